"""A small Chrome DevTools Protocol client for the console's browser test: headless Chromium
(Debian's package) started with a private profile, one page driven over its WebSocket
(the `websockets` library), every network request and console error of the page kept."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# No request of Chromium's own (updates, safe browsing, metrics) while the test runs.
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--window-size=1400,1000",
    "--remote-debugging-port=0",
]


class Browser:
    def __init__(self) -> None:
        assert CHROMIUM is not None
        self.profile = tempfile.mkdtemp(prefix="console-chromium-")
        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._attach()
        except BaseException:
            self.process.kill()
            self.process.wait(timeout=15)
            shutil.rmtree(self.profile, ignore_errors=True)
            raise

    def _attach(self) -> None:
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as answer:
            pages = [t for t in json.load(answer) if t["type"] == "page"]
        self.ws = connect(
            pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10, legacy=True
        )
        self.ids = itertools.count(1)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    def close(self) -> None:
        self.ws.close()
        self.process.terminate()
        self.process.wait(timeout=15)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _note(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"])[:500])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            self.errors.append(params["entry"]["text"])
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.errors.append(json.dumps(params["args"])[:500])
        self.events.append(message)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._note(message)

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        seen = [m for m in self.events if m.get("method") == method]
        if seen:
            self.events.remove(seen[-1])
            return seen[-1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv(timeout=deadline - time.monotonic()))
            self._note(message)
            if message.get("method") == method:
                self.events.remove(message)
                return message
        raise TimeoutError(method)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:1000])
        return result["result"].get("value")

    def _loaded(self, action: Any) -> None:
        self.events = [m for m in self.events if m.get("method") != "Page.loadEventFired"]
        action()
        self.wait_for("Page.loadEventFired")

    def goto(self, url: str) -> None:
        self._loaded(lambda: self.call("Page.navigate", url=url))

    def submit(self, script: str) -> None:
        """Run `script` (which fills a form and submits it) and wait for the next page."""
        self._loaded(lambda: self.evaluate(script))

    def screenshot(self, path: str | Path) -> None:
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        Path(path).write_bytes(base64.b64decode(shot["data"]))
