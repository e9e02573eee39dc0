"""The peer of bench/corruptions.ts: times bethgelab/imagecorruptions on the same 64x64 images.

Usage: python imagecorruptions_peer.py REPS IMAGE.png [IMAGE.png ...]
Prints one JSON object: {"version": ..., "ms": {corruption: [ms per image at severity 1..5]}}
(median over REPS timed calls per severity, after one untimed call; one thread).

With --serve before REPS it prints {"version": ...} and then answers each corruption name read
from stdin with one line {"corruption": ..., "ms": [medians], "min": [minima]}, so that the caller can time the two
sides of each corruption back to back (on a shared machine the load drifts within a run).
Needs: numpy, scipy, scikit-image 0.19, opencv, Pillow and imagecorruptions 1.1.2, e.g. on Debian 12
`apt-get install python3-numpy python3-scipy python3-skimage python3-opencv python3-pil` and
`pip install --no-deps imagecorruptions==1.1.2` in a venv made with --system-site-packages.
"""
import json
import os
import sys
import time
import warnings

for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = "1"
warnings.simplefilter("ignore")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
import cv2  # noqa: E402
from imagecorruptions import corrupt, get_corruption_names  # noqa: E402

cv2.setNumThreads(1)


def time_corruption(c, images, reps, mins=None):
    row = []
    for s in range(1, 6):
        corrupt(images[0], corruption_name=c, severity=s)
        times = []
        for r in range(reps):
            img = images[r % len(images)]
            t = time.perf_counter()
            corrupt(img, corruption_name=c, severity=s)
            times.append((time.perf_counter() - t) * 1000)
        row.append(float(np.median(times)))
        if mins is not None:
            mins.append(float(np.min(times)))
    print(f"[corruptions] peer {c}: {np.mean(row):.3f} ms", file=sys.stderr, flush=True)
    return row


def main():
    args = sys.argv[1:]
    serve = args[:1] == ["--serve"]
    if serve:
        args = args[1:]
    reps = int(args[0])
    images = []
    for path in args[1:]:
        a = np.array(Image.open(path))
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        images.append(a)
    try:
        from importlib.metadata import version
        ver = version("imagecorruptions")
    except Exception:
        ver = "unknown"
    if serve:
        print(json.dumps({"version": ver}), flush=True)
        for line in sys.stdin:
            c = line.strip()
            if not c:
                continue
            mins = []
            ms = time_corruption(c, images, reps, mins)
            print(json.dumps({"corruption": c, "ms": ms, "min": mins}), flush=True)
        return
    out = {"version": ver, "ms": {}}
    for c in get_corruption_names("all"):
        out["ms"][c] = time_corruption(c, images, reps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
