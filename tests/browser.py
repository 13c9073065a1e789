"""Headless Chromium for the UI tests, with nothing but the standard library.

Pages that render on their own are read with Chromium's command line (`--dump-dom`,
`--screenshot`). A menu that renders only once clicked needs the DevTools protocol: Chromium
speaks it over two inherited file descriptors (`--remote-debugging-pipe`: commands in on fd 3,
replies out on fd 4, each a JSON message ended by a NUL byte), so no websocket client and no
browser-automation package is needed.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

# Only the pages asked for: no updates, sync or first-run pages, whose requests would time out here.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,900",
)  # fmt: skip
# Virtual time runs a page's fetches and rendering to completion before the DOM is read.
RENDER = "--virtual-time-budget=10000"


def render(chromium: str, profile: Path, url: str, screenshot: Path) -> str:
    """The DOM of `url` once rendered; a screenshot of it at `screenshot`."""
    base = [chromium, *FLAGS, RENDER, f"--user-data-dir={profile}"]
    subprocess.run([*base, f"--screenshot={screenshot}", url], capture_output=True, timeout=60, check=True)
    return subprocess.run([*base, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=True).stdout


class DevToolsPage:
    """One page of a Chromium driven through its DevTools pipe; `close()` ends the browser."""

    def __init__(self, chromium: str, profile: Path, url: str) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def onto_3_and_4() -> None:  # dup first: either end may already sit on fd 3 or 4
            commands, replies = os.dup(commands_read), os.dup(replies_write)
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        self._browser = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=onto_3_and_4, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(commands_read)
        os.close(replies_write)
        self._pending, self._last_id, self._session = b"", 0, None
        target = self._call("Target.createTarget", url=url)["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def _call(self, method: str, **params: Any) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if self._session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:  # events arrive between replies; only the reply to this call matters here
            while b"\0" not in self._pending:
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium exited during {method}")
                self._pending += chunk
            raw, self._pending = self._pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str) -> Any:
        result = self._call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true within {timeout} s: {expression}")
            time.sleep(0.25)
        return value

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self._call("Page.captureScreenshot", format="png")["data"]))

    def close(self) -> None:
        try:
            self._call("Browser.close")
        except (OSError, RuntimeError):
            self._browser.kill()
        self._browser.wait(timeout=15)
        os.close(self._commands)
        os.close(self._replies)
