"""Measures the reference (bethgelab/imagecorruptions) on cotrain's fidelity images.

Run OUTSIDE the project's environment, with the reference installed, e.g. on Debian 12:

    apt-get install python3-numpy python3-scipy python3-skimage python3-opencv python3-pil
    python3 -m venv --system-site-packages /tmp/ic && /tmp/ic/bin/pip install --no-deps imagecorruptions==1.1.2
    /tmp/ic/bin/python test/corruption_data/make_reference.py [--images]

--images (re)writes the test images: skimage.data's astronaut, camera, chelsea and coffee, centre
cropped to a square and resized with PIL's LANCZOS to 64x64 and 224x224 (camera stays gray).
Then, for every corruption and severity, it corrupts each image REPEATS times (RGB; a gray image is
stacked to 3 channels as the reference does) and writes reference.json: the mean PSNR and SSIM
(skimage.metrics, data_range 255, 7x7 uniform window) of the uint8 result to the clean image.
"""
import json
import os
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")
HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["astronaut", "camera", "chelsea", "coffee"]
SIZES = {64: 8, 224: 2}  # size -> repeats


def make_images():
    import skimage.data
    from PIL import Image

    for name in NAMES:
        a = getattr(skimage.data, name)()
        h, w = a.shape[:2]
        s = min(h, w)
        a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        for size in SIZES:
            Image.fromarray(a).resize((size, size), Image.LANCZOS).save(
                os.path.join(HERE, f"{name}_{size}.png"))


def load(name, size):
    from PIL import Image

    a = np.array(Image.open(os.path.join(HERE, f"{name}_{size}.png")))
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return a


def main():
    import imagecorruptions
    from imagecorruptions import corrupt, get_corruption_names
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    if "--images" in sys.argv:
        make_images()
    np.random.seed(0)
    out = {
        "reference": "imagecorruptions-" + getattr(imagecorruptions, "__version__", "1.1.2"),
        "images": NAMES,
        "metric": "mean over images and repeats of PSNR (dB, capped at 60) and SSIM of the uint8 "
                  "RGB result to the clean image",
        "sizes": {},
    }
    for size, repeats in SIZES.items():
        clean = {n: load(n, size) for n in NAMES}
        table = {}
        for c in get_corruption_names("all"):
            rows = []
            for s in range(1, 6):
                ps, ss = [], []
                for n in NAMES:
                    for _ in range(repeats):
                        y = corrupt(clean[n], corruption_name=c, severity=s)
                        ps.append(min(60.0, peak_signal_noise_ratio(clean[n], y, data_range=255)))
                        ss.append(structural_similarity(clean[n], y, channel_axis=2, data_range=255))
                rows.append({"psnr": round(float(np.mean(ps)), 3), "ssim": round(float(np.mean(ss)), 4),
                             "psnr_sd": round(float(np.std(ps)), 3)})
            table[c] = rows
            print(size, c, [r["psnr"] for r in rows], file=sys.stderr)
        out["sizes"][str(size)] = {"repeats": repeats, "table": table}
    with open(os.path.join(HERE, "reference.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
