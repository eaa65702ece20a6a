"""Start and drive a real ComfyUI server, for the tests in tests/comfyui and the
workflow scripts in scripts/.

Standard library only: the test interpreter needs nothing that ComfyUI needs.
ComfyUI itself runs in its own venv, set up by scripts/setup_comfyui.sh in
``<repo>/.comfyui`` (or ``$DIA_COMFYUI_HOME``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_NAME = "deep_image_analogy"


class ComfyError(RuntimeError):
    """Something went wrong talking to the ComfyUI server."""


class PromptRejected(ComfyError):
    """POST /prompt refused the prompt (HTTP 400): validation failed."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        if isinstance(body, dict):
            self.error = body.get("error")
            self.node_errors = body.get("node_errors") or {}
        else:
            self.error = body
            self.node_errors = {}
        super().__init__(
            f"ComfyUI rejected the prompt (HTTP {status}): "
            f"error={json.dumps(self.error, indent=1)} "
            f"node_errors={json.dumps(self.node_errors, indent=1)}"
        )


@dataclass(frozen=True)
class ComfyInstall:
    """Where scripts/setup_comfyui.sh put ComfyUI."""

    home: Path

    @classmethod
    def default(cls) -> "ComfyInstall":
        return cls(Path(os.environ.get("DIA_COMFYUI_HOME") or REPO_ROOT / ".comfyui"))

    @property
    def comfy_dir(self) -> Path:
        return self.home / "ComfyUI"

    @property
    def python(self) -> Path:
        return self.home / "venv" / "bin" / "python"

    def missing(self) -> list[str]:
        """What is missing for a usable install; empty when it is ready."""
        needed = {
            "ComfyUI source": self.comfy_dir / "main.py",
            "ComfyUI venv": self.python,
            "finished dependency install": self.home / "stamps" / "requirements",
        }
        return [f"{what} ({path})" for what, path in needed.items() if not path.exists()]

    def ensure_pack_link(self) -> Path:
        """Make custom_nodes/<pack> point at this checkout; return the link."""
        link = self.comfy_dir / "custom_nodes" / PACK_NAME
        if link.is_symlink():
            if Path(os.readlink(link)).resolve() == REPO_ROOT:
                return link
            link.unlink()
        elif link.exists():
            raise ComfyError(f"{link} exists and is not a symlink; remove it")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(REPO_ROOT, target_is_directory=True)
        return link


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A ComfyUI server process on 127.0.0.1, and a small HTTP client for it."""

    def __init__(
        self,
        install: ComfyInstall,
        log_path: Path,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ):
        self.install = install
        self.comfy_dir = install.comfy_dir
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path)
        self.extra_args = tuple(extra_args)
        self.client_id = uuid.uuid4().hex
        self.proc: subprocess.Popen | None = None
        self.last_node_errors: dict = {}
        self._log_file = None

    # ------------------------------------------------------------------ paths
    @property
    def input_dir(self) -> Path:
        return self.comfy_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.comfy_dir / "output"

    @property
    def temp_dir(self) -> Path:
        return self.comfy_dir / "temp"

    # -------------------------------------------------------------- lifecycle
    def command(self) -> list[str]:
        return [
            str(self.install.python),
            "main.py",
            "--cpu",
            "--listen", "127.0.0.1",
            "--port", str(self.port),
            "--disable-auto-launch",
            "--dont-print-server",
            "--disable-api-nodes",
            *self.extra_args,
        ]

    def start(self, timeout: float = 120.0) -> "ComfyServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.input_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # The test interpreter's venv must not leak into ComfyUI's.
        for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
            env.pop(var, None)
        env["PYTHONUNBUFFERED"] = "1"
        env["HF_HUB_OFFLINE"] = "1"
        env["DO_NOT_TRACK"] = "1"
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.comfy_dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: stop() ends it whole
        )
        deadline = time.monotonic() + timeout
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ComfyError(
                    f"ComfyUI exited with code {code} while starting; log {self.log_path}:\n"
                    + self.log_tail()
                )
            try:
                self._request("GET", "/object_info", timeout=10)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ComfyError(
                    f"ComfyUI did not answer /object_info within {timeout:.0f} s; "
                    f"log {self.log_path}:\n" + self.log_tail()
                )
            time.sleep(0.5)

    def stop(self, grace: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=grace)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------- logs
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def import_failures(self) -> list[str]:
        """Log lines of custom node packs that failed to import."""
        return [ln for ln in self.log_text().splitlines() if "IMPORT FAILED" in ln]

    # ------------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, payload: Any = None, timeout: float = 30.0):
        """Return (status, parsed JSON or text or None)."""
        data = None
        headers = {}
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, _decode(err.read())

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        status, body = self._request("GET", path, timeout=timeout)
        if status != 200:
            raise ComfyError(f"GET {path}: HTTP {status}: {body!r}")
        return body

    def object_info(self, node_id: str | None = None) -> dict:
        """All node definitions, or one node's definition (None if unknown)."""
        if node_id is None:
            return self.get_json("/object_info")
        info = self.get_json("/object_info/" + urllib.parse.quote(node_id, safe=""))
        return info.get(node_id)

    def queue(self, prompt: dict, extra_data: dict | None = None) -> str:
        """POST an API-format prompt; return its prompt_id.

        Raises PromptRejected (with .error and .node_errors) if ComfyUI refuses it.
        """
        payload: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id}
        if extra_data:
            payload["extra_data"] = extra_data
        status, body = self._request("POST", "/prompt", payload)
        if status != 200 or not isinstance(body, dict) or "prompt_id" not in body:
            raise PromptRejected(status, body)
        # A 200 may still carry node_errors: invalid output branches that were
        # dropped while the valid ones were queued. Kept for tests to inspect.
        self.last_node_errors = body.get("node_errors") or {}
        return body["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        """The history entry of a finished prompt, or None while it is not done."""
        body = self.get_json("/history/" + urllib.parse.quote(prompt_id, safe=""))
        entry = body.get(prompt_id)
        if entry and entry.get("status") and entry["status"].get("status_str") in ("success", "error"):
            return entry
        return None

    def wait(self, prompt_id: str, timeout: float = 120.0, poll: float = 0.2) -> dict:
        """Poll /history/<id> until the prompt finished (success or error)."""
        deadline = time.monotonic() + timeout
        while True:
            entry = self.history(prompt_id)
            if entry is not None:
                return entry
            if not self.is_running():
                raise ComfyError(f"ComfyUI died while running {prompt_id}:\n" + self.log_tail())
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"prompt {prompt_id} not finished after {timeout:.0f} s; log tail:\n"
                    + self.log_tail()
                )
            time.sleep(poll)

    def run(self, prompt: dict, timeout: float = 120.0) -> dict:
        """queue() then wait(): the finished history entry."""
        return self.wait(self.queue(prompt), timeout=timeout)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt: the running prompt (or only prompt_id, if it runs) stops."""
        payload = {"prompt_id": prompt_id} if prompt_id else {}
        status, body = self._request("POST", "/interrupt", payload)
        if status != 200:
            raise ComfyError(f"POST /interrupt: HTTP {status}: {body!r}")

    def clear_queue(self) -> None:
        """Drop all pending (not yet running) prompts."""
        self._request("POST", "/queue", {"clear": True})

    # ---------------------------------------------------------------- results
    @staticmethod
    def status_str(entry: dict) -> str:
        return entry["status"]["status_str"]

    @staticmethod
    def messages(entry: dict) -> list:
        return entry["status"].get("messages", [])

    @classmethod
    def execution_error(cls, entry: dict) -> dict | None:
        """The 'execution_error' message data (node_id, node_type,
        exception_type, exception_message, traceback, ...), if any."""
        for name, data in cls.messages(entry):
            if name == "execution_error":
                return data
        return None

    @classmethod
    def was_interrupted(cls, entry: dict) -> bool:
        return any(name == "execution_interrupted" for name, _ in cls.messages(entry))

    def output_images(self, entry: dict, node_id: str) -> list[Path]:
        """Paths of the images an output node (e.g. SaveImage) wrote to output/."""
        node_out = entry.get("outputs", {}).get(str(node_id))
        if node_out is None:
            raise KeyError(
                f"node {node_id!r} has no outputs; nodes with outputs: "
                f"{sorted(entry.get('outputs', {}))}"
            )
        roots = {"output": self.output_dir, "temp": self.temp_dir, "input": self.input_dir}
        paths = []
        for img in node_out.get("images", []):
            root = roots.get(img.get("type", "output"), self.output_dir)
            paths.append(root / img.get("subfolder", "") / img["filename"])
        return paths


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
