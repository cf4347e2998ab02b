"""Headless Chromium driven over the DevTools protocol: load a page, collect what a person
would notice (console errors, failed or outgoing requests), read the DOM, take a screenshot.

The browser is found the way a user has one: ``$INGEST_BROWSER`` (a path or a command name),
else ``chromium``, ``chromium-browser``, ``google-chrome`` or ``google-chrome-stable`` on
PATH. The ``browser`` fixture (tests/conftest.py) skips the browser tests when there is none,
or fails them when ``INGEST_REQUIRE_BROWSER=1`` (as ``.ci/run`` sets).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

BROWSER_ENV = "INGEST_BROWSER"
REQUIRE_ENV = "INGEST_REQUIRE_BROWSER"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = (
    "install one (Debian/Ubuntu: apt-get install chromium; macOS: Google Chrome) "
    f"or set {BROWSER_ENV}=/path/to/chrome"
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
]
MOBILE_BELOW = 600  # viewports narrower than this are emulated as a phone


class BrowserNotFound(Exception):
    """$INGEST_BROWSER names something that is not an executable."""


def find_browser(environ: Mapping[str, str]) -> Path | None:
    """The browser named by $INGEST_BROWSER, else the first of BROWSER_NAMES on $PATH."""
    search = environ.get("PATH", os.defpath)
    named = environ.get(BROWSER_ENV, "")
    if named:
        found = shutil.which(named, path=search)
        if found is None:
            raise BrowserNotFound(f"{BROWSER_ENV}={named!r} is not an executable file")
        return Path(found)
    for name in BROWSER_NAMES:
        found = shutil.which(name, path=search)
        if found is not None:
            return Path(found)
    return None


def missing_browser_reason() -> str:
    """Why the browser tests do not run, and how to make them run."""
    looked = ", ".join(BROWSER_NAMES)
    return f"no Chromium or Chrome found (${BROWSER_ENV} unset; none of {looked} on PATH): {INSTALL_HINT}"


@dataclass
class PageVisit:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    failed: list[str] = field(default_factory=list)  # requests that did not load
    result: Any = None  # what the probe script returned
    screenshot: bytes = b""


def visit(
    browser: Path,
    url: str,
    probe: str,
    screenshot: Path,
    *,
    width: int = 1280,
    timeout: float = 30,
) -> PageVisit:
    """Load ``url`` in ``browser`` with a viewport ``width`` CSS pixels wide, run the
    JavaScript expression ``probe`` (its value must be JSON-able; a promise is awaited), and
    save a full-page PNG to ``screenshot``."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    process = subprocess.Popen(
        [str(browser), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port = _devtools_port(profile, timeout)
        # A fresh tab of our own: the browser's first one may still be loading its start page.
        fresh = urllib.request.Request(
            f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT"
        )
        with urllib.request.urlopen(fresh, timeout=timeout) as r:
            target = json.load(r)
        session = _Session(target["webSocketDebuggerUrl"], timeout)
        try:
            return session.visit(url, probe, screenshot, width)
        finally:
            session.close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(profile: Path, timeout: float) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists():
            lines = marker.read_text().splitlines()
            if lines and lines[0].isdigit():
                return int(lines[0])
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


class _Session:
    def __init__(self, ws_url: str, timeout: float) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        self.ws.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def wait_for(self, event: str) -> None:
        if any(e.get("method") == event for e in self.events):
            return
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            self.events.append(message)
            if message.get("method") == event:
                return
        raise TimeoutError(f"no {event} within {self.timeout} s")

    def visit(self, url: str, probe: str, screenshot: Path, width: int) -> PageVisit:
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        # The viewport a person has: a desktop window, or a phone (which honours the page's
        # <meta name="viewport">), at one device pixel per CSS pixel.
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=1000,
            deviceScaleFactor=1,
            mobile=width < MOBILE_BELOW,
        )
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        value = self.call(
            "Runtime.evaluate", expression=probe, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in value:
            raise RuntimeError(f"probe failed: {value['exceptionDetails']}")
        metrics = self.call("Page.getLayoutMetrics")
        height = metrics["cssContentSize"]["height"]
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        )
        # Events that arrived while the page settled.
        self.call("Runtime.evaluate", expression="0")
        png = base64.b64decode(shot["data"])
        urls = {
            e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        }
        screenshot.write_bytes(png)
        return PageVisit(
            console_errors=self._console_errors(),
            requests=[
                e["params"]["request"]["url"]
                for e in self.events
                if e.get("method") == "Network.requestWillBeSent"
            ],
            failed=[
                f"{urls.get(e['params']['requestId'], '?')} {e['params'].get('errorText', '?')}"
                for e in self.events
                if e.get("method") == "Network.loadingFailed"
            ],
            result=value["result"].get("value"),
            screenshot=png,
        )

    def _console_errors(self) -> list[str]:
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                found.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
        return found
