"""The web studio in Firefox (Debian's ``firefox-esr``, headless), against ``masquerade serve``: the
one-frame preview appears and changes with an option, the swap gives a result with a before/after
slider that the keyboard moves and a provenance summary that finds the watermark; the page's
Content-Security-Policy blocks nothing of its own and no script error happens.

Firefox is driven through its Marionette port directly (the WebDriver commands that geckodriver would
send, over Marionette's ``length:json`` socket protocol), so no geckodriver is needed. It runs on a
fresh temporary profile and is killed at the end, with its content processes.

Needs ``/usr/bin/firefox-esr`` or ``firefox`` on PATH (``MASQUERADE_FIREFOX=<path>`` to choose one;
``scripts/install_browser.sh`` installs Debian's); skips without it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from masquerade import sample_path

pytestmark = pytest.mark.slow  # a real browser, a real swap

pytest.importorskip("fastapi")

import web_fixtures as web  # noqa: E402


def _firefox() -> str | None:
    if chosen := os.environ.get("MASQUERADE_FIREFOX"):
        return chosen
    return "/usr/bin/firefox-esr" if Path("/usr/bin/firefox-esr").is_file() else shutil.which("firefox")


FIREFOX = _firefox()
if FIREFOX is None or not Path(FIREFOX).is_file():
    where = f"{FIREFOX} missing" if FIREFOX else "no /usr/bin/firefox-esr and no firefox on PATH"
    pytest.skip(
        f"no Firefox: {where} (run scripts/install_browser.sh, or set MASQUERADE_FIREFOX)",
        allow_module_level=True,
    )

HOPPER = str(Path(sample_path("grace_hopper")).resolve())
ASTRONAUT = str(Path(sample_path("astronaut")).resolve())
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the WebDriver key of an element reference
LEFT = "\ue012"  # the WebDriver key code of the left arrow
PREFS: dict[str, Any] = {  # quiet: nothing fetched from the internet, no first-run pages
    "browser.shell.checkDefaultBrowser": False, "browser.startup.homepage": "about:blank",
    "browser.newtabpage.enabled": False, "app.update.enabled": False, "extensions.update.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False, "toolkit.telemetry.enabled": False,
    "network.connectivity-service.enabled": False, "network.captive-portal-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False, "browser.safebrowsing.phishing.enabled": False,
}  # fmt: skip
# the console's reports about the page (from its load on): blocked by Content-Security-Policy, and
# errors in its scripts (read in Firefox's own context, which Marionette enters with system access)
CONSOLE = """
const origin = arguments[0], quiet = Ci.nsIScriptError.warningFlag | Ci.nsIScriptError.infoFlag;
return Services.console.getMessageArray()
  .filter((e) => e instanceof Ci.nsIScriptError && e.sourceName.startsWith(origin)
    && (e.category.startsWith("CSP") || !(e.flags & quiet)))
  .map((e) => e.category + ": " + e.errorMessage);
"""


class Marionette:
    """A WebDriver session over Firefox's Marionette socket: ``m(command, params)`` sends a command
    and returns its answer (raises on an error answer)."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        self.buf = b""
        self.seq = 0
        hello = self._read()
        assert hello.get("applicationType") == "gecko", hello

    def _read(self) -> Any:
        while b":" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("Marionette closed the connection")
            self.buf += chunk
        head, rest = self.buf.split(b":", 1)
        size = int(head)
        while len(rest) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("Marionette closed the connection")
            rest += chunk
        self.buf = rest[size:]
        return json.loads(rest[:size])

    def __call__(self, command: str, params: dict[str, Any] | None = None) -> Any:
        self.seq += 1
        msg = json.dumps([0, self.seq, command, params or {}]).encode()
        self.sock.sendall(str(len(msg)).encode() + b":" + msg)
        while True:  # [1, id, error, result]
            reply = self._read()
            if reply[0] == 1 and reply[1] == self.seq:
                if reply[2] is not None:
                    raise RuntimeError(f"{command}: {reply[2]}")
                return reply[3]

    def js(self, script: str, *args: Any) -> Any:
        return self("WebDriver:ExecuteScript", {"script": script, "args": list(args)})["value"]

    def element(self, css: str) -> str:
        return str(self("WebDriver:FindElement", {"using": "css selector", "value": css})["value"][ELEMENT])

    def keys(self, css: str, text: str) -> None:
        """Types ``text`` into the element (a file input: chooses the file at that path)."""
        self("WebDriver:ElementSendKeys", {"id": self.element(css), "text": text})

    def console_problems(self, origin: str) -> list[str]:
        """The console's reports about pages from ``origin`` (see ``CONSOLE``)."""
        self("Marionette:SetContext", {"value": "chrome"})
        try:
            return list(self.js(CONSOLE, origin))
        finally:
            self("Marionette:SetContext", {"value": "content"})

    def wait(self, script: str, timeout: float, what: str) -> Any:
        """Waits until ``script`` returns something true; that."""
        deadline = time.monotonic() + timeout
        while True:
            if value := self.js(script):
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ends Firefox and every process it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what is left: its content processes, or all of it
    proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """``masquerade serve`` on a new data folder: (address, address with the token, token)."""
    yield from web.serve(tmp_path_factory.mktemp("firefox-data"))


@pytest.fixture(scope="module")
def firefox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Marionette]:
    """Headless Firefox on a fresh profile, in a WebDriver session (what it prints: firefox.log beside
    the profile)."""
    assert FIREFOX is not None
    folder = tmp_path_factory.mktemp("firefox")
    profile = folder / "profile"
    profile.mkdir()
    port = web.free_port()
    prefs = {**PREFS, "marionette.port": port}
    (profile / "user.js").write_text(
        "".join(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in prefs.items())
    )
    log = folder / "firefox.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [FIREFOX, "--headless", "--marionette", "--remote-allow-system-access", "--no-remote",
             "--profile", str(profile)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "MOZ_HEADLESS": "1"},
            start_new_session=True,
        )  # fmt: skip
    try:
        m = Marionette(port)
        m("WebDriver:NewSession", {"capabilities": {}})
        m("WebDriver:SetWindowRect", {"width": 1400, "height": 1000})
        yield m
        with contextlib.suppress(OSError, RuntimeError):
            m("WebDriver:DeleteSession")
        m.sock.close()
    finally:
        _stop(proc)


def _wait_preview(m: Marionette, after: int) -> int:
    """Waits for a preview newer than number ``after``, loaded; its number."""
    seq = "Number(document.getElementById('preview-img').dataset.seq || 0)"
    m.wait(f"return {seq} > {after} || !!document.querySelector('#preview-note .error')", 120, "a preview")
    note = m.js("return document.getElementById('preview-note').textContent")
    assert not m.js("return !!document.querySelector('#preview-note .error')"), note
    assert re.search(r"preview \d+ ms", note) and "1 face swapped" in note, note
    m.wait(
        "const i = document.getElementById('preview-img'); return i.complete && i.naturalWidth > 0", 30, "it"
    )
    return int(m.js(f"return {seq}"))


def test_photo_in_firefox(server, firefox) -> None:
    url, ready, _ = server
    m = firefox
    m("WebDriver:Navigate", {"url": ready})
    assert m.wait("return location.href", 10, "the address") == url + "/"  # the token is dropped
    m.wait("return document.querySelectorAll('#swapper option').length > 0", 60, "the swappers")
    m.wait("return document.querySelectorAll('#common-options [data-name]').length > 0", 30, "the options")
    assert "masquerade" in m.js("return document.title")
    assert m.js("return document.cookie") == ""  # the token's cookie is HttpOnly
    m.keys("#source-file", HOPPER)
    m.keys("#target-file", ASTRONAUT)
    seq = _wait_preview(m, 0)
    before = web.img_pixels(m.js, "preview-img")
    # an option changed: a new preview, different from the first
    m("WebDriver:ElementClick", {"id": m.element("#opt-mask option[value='skin']")})
    _wait_preview(m, seq)
    after = web.img_pixels(m.js, "preview-img")
    changed = np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 12
    assert changed.sum() > 30, changed.sum()  # the eyes and the mouth come back from the target
    m("WebDriver:ElementClick", {"id": m.element("#start")})
    status = m.wait(
        "const t = document.getElementById('status').textContent;"
        "return /^(done|failed|cancelled|interrupted)\\b/.test(t) && t",
        180,
        "the swap",
    )
    assert status.startswith("done"), status
    m.wait(
        "const r = document.getElementById('result-media'); return r && r.naturalWidth === 512", 30, "result"
    )
    # the before/after slider, by keyboard: the result shows right of the line
    slider = (
        "return [document.getElementById('compare-range').value,"
        " document.getElementById('result-media').style.clipPath]"
    )
    value, clip = m.js(slider)
    assert value == "50" and "50%" in clip, (value, clip)
    m.keys("#compare-range", LEFT + LEFT)
    value, clip = m.js(slider)
    assert value == "48" and "48%" in clip, (value, clip)
    assert m.js("return document.activeElement.id") == "compare-range"
    # the provenance summary of the result
    summary = m.wait(
        "const e = document.querySelector('#verify-watermark, #verify .error'); return e && e.textContent",
        120,
        "the provenance summary",
    )
    assert re.match(r"watermark present \(z = \d+\.\d\)", summary), summary
    assert m.console_problems(url) == []
