"""Re-create the demo pair demo/a.png (a photograph) and demo/bp.png (a painting).

A is NASA's portrait of astronaut Eileen Collins (public domain, a work of the US
government), as scikit-image ships it (``skimage/data/astronaut.png``), cropped to a
head-and-shoulders frame like the painting's. B' is Leonardo da Vinci's Mona Lisa
(c. 1503-1519, public domain), the reproduction ``img/mona-lisa/mona.png`` in the source
distribution of the PyPI package monailisa 0.1.13, with its one-colour border cut off.
Both come from package registries, so this runs offline once they are downloaded:

    pip download --no-deps scikit-image==0.26.0 -d /tmp/sk && unzip -q /tmp/sk/*.whl 'skimage/data/*' -d /tmp/sk
    pip download --no-deps --no-binary :all: monailisa==0.1.13 -d /tmp/ml && tar xzf /tmp/ml/*.tar.gz -C /tmp/ml
    python scripts/make_demo_images.py /tmp/sk/skimage/data/astronaut.png \\
        /tmp/ml/monailisa-0.1.13/img/mona-lisa/mona.png demo
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

PHOTO_CROP = (85, 0, 345, 305)  # (left, top, right, bottom) in astronaut.png (512x512): face and shoulders
PAINTING_CROP = (0, 0, 314, 366)  # mona.png is 316x371 with a 2-5 px dark blue border right and below


def main(photo: str, painting: str, out: str) -> None:
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    with Image.open(photo) as im:
        im.convert("RGB").crop(PHOTO_CROP).save(outdir / "a.png", optimize=True)
    with Image.open(painting) as im:
        im.convert("RGB").crop(PAINTING_CROP).save(outdir / "bp.png", optimize=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
