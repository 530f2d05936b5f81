"""Headless Debian chromium driven over the DevTools protocol on --remote-debugging-pipe.

No Python dependency and no chromedriver: chromium reads JSON commands from fd 3 and writes
replies and events to fd 4, each message ended by a NUL byte.  Input goes through
``Input.dispatchMouseEvent`` / ``Input.insertText`` (real clicks and typing, as a user's),
the page is inspected with ``Runtime.evaluate``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio",
    "--remote-debugging-pipe",
]


class CdpError(Exception):
    pass


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise CdpError("chromium is not installed (scripts/install-test-deps installs it)")


class Browser:
    """One chromium process; ``page()`` opens a tab and attaches to it."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "chromium.log"
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Child ends moved above fd 9, then bash (dash takes one-digit fds only) puts them on
        # 3 and 4: pass_fds keeps fd numbers, and no preexec_fn runs in a threaded process.
        r3 = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        w4 = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)
        cmd = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={workdir / 'profile'}",
               "about:blank"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["/bin/bash", "-c", f'exec "$@" 3<&{r3} 4>&{w4} {r3}<&- {w4}>&-', "bash", *cmd],
                pass_fds=(r3, w4), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
        os.close(r3)
        os.close(w4)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    # -- transport ---------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CdpError("timed out waiting for chromium")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    log = self.log_path.read_text(errors="replace")[-2000:]
                    raise CdpError(f"chromium exited:\n{log}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def page(self, width: int = 1280, height: int = 900) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page.enable", "Runtime.enable"):
            page.send(domain)
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        return self.browser.send(method, params, self.session, timeout)

    def console_problems(self) -> list[str]:
        """Uncaught exceptions and console.error calls seen so far in this page."""
        out = []
        for ev in self.browser.events:
            if ev.get("sessionId") != self.session:
                continue
            if ev["method"] == "Runtime.exceptionThrown":
                details = ev["params"]["exceptionDetails"]
                out.append(details.get("exception", {}).get("description")
                           or details.get("text", ""))
            elif ev["method"] == "Runtime.consoleAPICalled" and ev["params"]["type"] == "error":
                out.append(" ".join(str(a.get("value", a.get("description", "")))
                                    for a in ev["params"]["args"]))
        return out

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str):
        """The value of a JS expression (promises awaited)."""
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                              "awaitPromise": True})
        if "exceptionDetails" in res:
            d = res["exceptionDetails"]
            why = d.get("exception", {}).get("description") or d.get("text")
            raise CdpError(f"{expression!r}: {why}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0, what: str | None = None):
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or expression}")
            time.sleep(0.05)

    def _center(self, selector: str) -> tuple[float, float]:
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if box is None:
            raise CdpError(f"no element {selector!r}")
        return box[0], box[1]

    def click(self, selector: str) -> None:
        x, y = self._center(selector)
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def type(self, selector: str, text: str) -> None:
        """Replace the field's text as a user does: focus, select all, type."""
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        if text:
            self.send("Input.insertText", {"text": text})
        else:
            for kind in ("rawKeyDown", "keyUp"):
                self.send("Input.dispatchKeyEvent", {"type": kind, "key": "Backspace",
                                                     "windowsVirtualKeyCode": 8})

    def select(self, selector: str, value: str) -> None:
        """Pick an <option> (native pop-ups are not drawn headless): set it, fire change."""
        ok = self.evaluate(
            f"(() => {{ const s = document.querySelector({json.dumps(selector)});"
            f" if (!s || ![...s.options].some(o => o.value === {json.dumps(value)})) return false;"
            f" s.value = {json.dumps(value)};"
            " s.dispatchEvent(new Event('change', {bubbles: true}));"
            " return true; })()")
        if not ok:
            raise CdpError(f"no option {value!r} in {selector!r}")

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(data["data"]))
