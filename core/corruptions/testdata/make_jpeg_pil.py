"""Makes the JPEG fixtures of kernels_test.ts: PIL's own round trip (Image.save(..., "JPEG",
quality=q), then Image.open), as the reference (bethgelab/imagecorruptions) does it, of two clean
images from test/corruption_data. Run outside the project with Debian 12's python3-pil (Pillow 9.4,
libjpeg62-turbo 2.1.5):

    python3 core/corruptions/testdata/make_jpeg_pil.py

Writes jpeg_pil_<name>_q<q>.png (lossless PNGs of the decoded pixels) beside this script.
"""
import io
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "test", "corruption_data")

CASES = [
    # name, source, crop (top, left, height, width) or None, qualities
    ("astronaut64", "astronaut_64.png", None, [25, 18, 15, 10, 7]),
    # odd sizes: partial 8x8 and 16x16 blocks at the right and bottom edges
    ("chelsea45x37", "chelsea_224.png", (60, 90, 45, 37), [18, 7]),
]

for name, src, crop, qualities in CASES:
    x = np.asarray(Image.open(os.path.join(DATA, src)).convert("RGB"))
    if crop:
        t, l, h, w = crop
        x = x[t : t + h, l : l + w]
    Image.fromarray(x).save(os.path.join(HERE, f"jpeg_pil_{name}_in.png"))
    for q in qualities:
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, "JPEG", quality=q)
        buf.seek(0)
        y = np.asarray(Image.open(buf).convert("RGB"))
        Image.fromarray(y).save(os.path.join(HERE, f"jpeg_pil_{name}_q{q}.png"))
        print(name, q, y.shape)
