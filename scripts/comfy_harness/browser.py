"""Drive a headless Chromium through the DevTools protocol, for the tests in tests/comfyui
and the workflow scripts in scripts/.

Standard library only, like ``server.py``: Chromium is started with
``--remote-debugging-pipe`` and speaks CDP over two pipes (it reads commands on
fd 3 and writes replies and events on fd 4, one JSON message per NUL-terminated
chunk), so no websocket client is needed.

Chromium comes from Debian (``apt-get install chromium``, which
scripts/setup_comfyui.sh does); ``find_chromium()`` returns None without it.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(RuntimeError):
    """Chromium failed, or a command or a page script failed."""


def find_chromium() -> str | None:
    """The Chromium executable: ``$DIA_CHROMIUM``, else the first of CANDIDATES on PATH."""
    explicit = os.environ.get("DIA_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless Chromium process with one page, driven over the DevTools pipe."""

    def __init__(self, executable: str, width: int = 1600, height: int = 900):
        self.executable = executable
        self.width, self.height = width, height
        self.proc: subprocess.Popen | None = None
        self.session: str | None = None
        self.console: list[str] = []  # console messages and exceptions of the page
        self._profile: str | None = None
        self._to_browser: int | None = None
        self._from_browser: int | None = None
        self._buffer = b""
        self._next_id = 0
        self._stderr = None

    # -------------------------------------------------------------- lifecycle
    def start(self) -> "Chromium":
        self._profile = tempfile.mkdtemp(prefix="dia-chromium-")
        cmd_read, cmd_write = os.pipe()  # we write commands, Chromium reads fd 3
        out_read, out_write = os.pipe()  # Chromium writes fd 4, we read

        def child_fds() -> None:  # runs in the child before exec: put the pipes on fds 3 and 4
            os.dup2(cmd_read, 100)
            os.dup2(out_write, 101)
            os.dup2(100, 3)
            os.dup2(101, 4)
            os.close(100)
            os.close(101)

        self._stderr = tempfile.TemporaryFile()
        args = [self.executable, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-pipe",
                f"--window-size={self.width},{self.height}", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     close_fds=False, preexec_fn=child_fds, start_new_session=True)
        os.close(cmd_read)
        os.close(out_write)
        self._to_browser, self._from_browser = cmd_write, out_read
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.page_call("Page.enable")
        self.page_call("Runtime.enable")
        self.page_call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                       deviceScaleFactor=1, mobile=False)
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        for fd in (self._to_browser, self._from_browser):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._to_browser = self._from_browser = None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def __enter__(self) -> "Chromium":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def stderr_tail(self, chars: int = 3000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")[-chars:]

    # ---------------------------------------------------------------- protocol
    def call(self, method: str, session: str | None = None, timeout: float = 60.0, **params: Any) -> dict:
        """Send one CDP command and return its result (raises BrowserError on an error reply)."""
        if self._to_browser is None:
            raise BrowserError("Chromium is not running")
        self._next_id += 1
        msg_id = self._next_id
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data):]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline, method)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._on_event(reply)

    def page_call(self, method: str, timeout: float = 60.0, **params: Any) -> dict:
        return self.call(method, session=self.session, timeout=timeout, **params)

    def _read_message(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no reply to {waiting_for} in time")
            ready, _, _ = select.select([self._from_browser], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium closed the pipe; stderr:\n{self.stderr_tail()}")
                self._buffer += chunk
            elif self.proc is not None and self.proc.poll() is not None:
                raise BrowserError(f"Chromium exited ({self.proc.returncode}); stderr:\n{self.stderr_tail()}")
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def _on_event(self, event: dict) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")

    # -------------------------------------------------------------------- page
    def navigate(self, url: str) -> None:
        result = self.page_call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"navigating to {url}: {result['errorText']}")

    def evaluate(self, expression: str, timeout: float = 60.0) -> Any:
        """Run a JS expression in the page (awaiting a promise) and return its JSON value."""
        result = self.page_call("Runtime.evaluate", timeout=timeout, expression=expression, awaitPromise=True,
                                returnByValue=True, userGesture=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, poll: float = 0.25) -> Any:
        """Poll a JS expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression, timeout=max(1.0, deadline - time.monotonic()))
            except BrowserError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout:.0f} s waiting for: {expression}\n"
                                   + "\n".join(self.console[-20:]))
            time.sleep(poll)

    def screenshot(self, path: Path) -> Path:
        data = self.page_call("Page.captureScreenshot", format="png")["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path


# ----------------------------------------------------------------- ComfyUI's page
POPUPS_JS = """JSON.stringify([...document.querySelectorAll('.p-toast-message, .p-dialog')]
    .map(e => e.innerText.trim()).filter(Boolean))"""
DISMISS_JS = """(() => {
  document.querySelectorAll('.p-dialog-close-button, .p-toast-close-button').forEach(e => e.click());
  return true;
})()"""
# The smallest scale at which the graph fits the window with a margin; centres it.
FIT_JS = """((margin) => {
  const g = app.graph, c = app.canvas;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  const grow = (b) => { x0 = Math.min(x0, b[0]); y0 = Math.min(y0, b[1]);
                        x1 = Math.max(x1, b[0] + b[2]); y1 = Math.max(y1, b[1] + b[3]); };
  for (const n of g.nodes) grow(n.getBounding());
  for (const gr of g.groups ?? []) grow(gr._bounding ?? gr.bounding);
  const r = window.devicePixelRatio || 1, w = c.canvas.width / r, h = c.canvas.height / r;
  const s = Math.min((w - 2 * margin) / (x1 - x0), (h - 2 * margin) / (y1 - y0));
  c.ds.scale = s;
  c.ds.offset = [(w / s - (x1 - x0)) / 2 - x0, (h / s - (y1 - y0)) / 2 - y0];
  c.setDirty(true, true);
  return s;
})"""


class ComfyPage:
    """ComfyUI's frontend in a Chromium page: load workflows, convert them, fit the view."""

    def __init__(self, browser: Chromium, url: str):
        self.browser = browser
        self.url = url

    def open(self, timeout: float = 120.0) -> "ComfyPage":
        # Without this setting the first visit opens the template browser (and then sets it).
        request = urllib.request.Request(self.url + "/api/settings/Comfy.TutorialCompleted", data=b"true",
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30):
            pass
        self.browser.navigate(self.url + "/")
        self.browser.wait_for("document.readyState === 'complete' && !!(window.app && app.graph && app.canvas"
                              " && app.extensionManager)", timeout=timeout)
        time.sleep(2.0)  # let the start-up finish (settings, extensions, the default graph)
        self.dismiss_popups()
        return self

    def frontend_version(self) -> str:
        return str(self.browser.evaluate("window.__COMFYUI_FRONTEND_VERSION__"))

    def popups(self) -> list[str]:
        """Texts of the toasts and dialogs on the page (validation alerts show up here)."""
        return json.loads(self.browser.evaluate(POPUPS_JS))

    def dismiss_popups(self, timeout: float = 10.0) -> None:
        """Close every toast and dialog; raise if they do not go away."""
        deadline = time.monotonic() + timeout
        while self.popups():
            if time.monotonic() > deadline:
                raise BrowserError(f"popups that do not close: {self.popups()}")
            self.browser.evaluate(DISMISS_JS)
            time.sleep(0.3)

    def load(self, workflow: dict) -> dict:
        """``app.loadGraphData(workflow)``; return what the frontend makes of it:
        ``{"prompt": <graphToPrompt().output, the API format>, "workflow": <app.graph.serialize()>}``."""
        script = ("(async (data) => { await app.loadGraphData(data); const p = await app.graphToPrompt();"
                  " return JSON.stringify({prompt: p.output, workflow: app.graph.serialize()}); })"
                  f"({json.dumps(workflow)})")
        return json.loads(self.browser.evaluate(script))

    def command(self, command_id: str) -> None:
        self.browser.evaluate(f"app.extensionManager.command.execute({json.dumps(command_id)})")

    def set_setting(self, setting_id: str, value: Any) -> None:
        """Change a frontend setting; ComfyUI stores it in its user directory."""
        self.browser.evaluate(f"app.extensionManager.setting.set({json.dumps(setting_id)}, {json.dumps(value)})")

    def fit_graph(self, margin: int = 24) -> float:
        """Zoom and pan so the whole graph (nodes and groups) fills the window; return the scale."""
        return float(self.browser.evaluate(f"{FIT_JS}({margin})"))
