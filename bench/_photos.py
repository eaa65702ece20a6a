"""Real photographs for the benchmarks: scikit-image's CC0 / public-domain samples.

The photos are not committed. On first use they are taken out of the scikit-image wheel,
which ``pip download`` fetches into a cache folder (``.cache/bench/`` by default, ignored
by git); later runs find them there.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

SKIMAGE_VERSION = "0.26.0"
"""The scikit-image release whose wheel the photos come from."""

SKIMAGE_PHOTOS: tuple[str, ...] = ("chelsea", "astronaut", "coffee")
"""Sample photos used (all CC0 or public domain, see skimage/data/README.txt)."""

DEFAULT_CACHE = Path(".cache/bench")


class PhotoError(RuntimeError):
    """The photos could not be found or fetched; the message says what to do instead."""


def _member_name(name: str) -> str:
    return f"skimage/data/{name}.png"


def extract_photos(wheel: Path, names: tuple[str, ...], dest: Path) -> list[Path]:
    """Copy ``skimage/data/<name>.png`` out of a scikit-image wheel into ``dest``.

    Only those members are read; nothing else in the wheel is unpacked.

    Args:
        wheel: path of a ``scikit_image-*.whl`` (a zip file).
        names: photo names without extension, e.g. ``("chelsea",)``.
        dest: folder the PNGs are written to (created if missing).

    Returns:
        The written paths, in the order of ``names``.

    Raises:
        PhotoError: the file is not a zip or lacks one of the photos.
    """
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = set(zf.namelist())
            for name in names:
                member = _member_name(name)
                if member not in members:
                    raise PhotoError(f"{wheel} has no {member}")
                target = dest / f"{name}.png"
                tmp = target.with_suffix(".png.part")
                tmp.write_bytes(zf.read(member))
                tmp.replace(target)
                out.append(target)
    except zipfile.BadZipFile:
        raise PhotoError(f"{wheel} is not a valid wheel (zip) file") from None
    return out


def _download_wheel(cache: Path) -> Path:
    """``pip download`` the scikit-image wheel (no dependencies) into ``cache``."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        f"scikit-image=={SKIMAGE_VERSION}", "-d", str(cache),
    ]
    logger.info("fetching the sample photos: %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PhotoError(f"could not run pip to fetch scikit-image {SKIMAGE_VERSION}: {e}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise PhotoError(f"pip download of scikit-image {SKIMAGE_VERSION} failed: {tail[0]}")
    wheels = sorted(cache.glob(f"scikit_image-{SKIMAGE_VERSION}-*.whl"))
    if not wheels:
        raise PhotoError(f"pip download finished but no scikit_image-{SKIMAGE_VERSION} wheel is in {cache}")
    return wheels[0]


def skimage_photos(names: tuple[str, ...], cache: Path = DEFAULT_CACHE) -> list[Path]:
    """Paths of scikit-image sample photos, fetching them into ``cache`` when missing.

    Looks for ``cache/<name>.png`` first, then for a scikit-image wheel already in
    ``cache``, and only then runs ``pip download``.

    Args:
        names: photo names from ``SKIMAGE_PHOTOS``.
        cache: the cache folder.

    Returns:
        One PNG path per name.

    Raises:
        PhotoError: unknown name, or the photos cannot be fetched (offline, no pip); the
            message suggests ``--photos`` with local image files instead.
    """
    unknown = [n for n in names if n not in SKIMAGE_PHOTOS]
    if unknown:
        raise PhotoError(f"unknown sample photo(s) {unknown}; choose from {SKIMAGE_PHOTOS}")
    missing = tuple(n for n in names if not (cache / f"{n}.png").is_file())
    if missing:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            wheels = sorted(cache.glob(f"scikit_image-{SKIMAGE_VERSION}-*.whl"))
            wheel = wheels[0] if wheels else _download_wheel(cache)
            extract_photos(wheel, missing, cache)
        except (PhotoError, OSError) as e:
            raise PhotoError(
                f"the scikit-image sample photos are not in {cache} and could not be fetched ({e}); "
                "pass your own images with --photos PATH [PATH ...]"
            ) from None
    return [cache / f"{n}.png" for n in names]
