"""What the browser tests share: ``masquerade serve`` started as a user starts it, and Debian's Chromium
driven by Selenium (tests/test_web_e2e.py, tests/test_web_studio.py).

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian's chromium and chromium-driver;
``scripts/install_browser.sh`` installs them, as the README's test command does)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM = os.environ.get("MASQUERADE_CHROMIUM", "/usr/bin/chromium")
DRIVER = os.environ.get("MASQUERADE_CHROMEDRIVER", "/usr/bin/chromedriver")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    if not (Path(CHROMIUM).is_file() and Path(DRIVER).is_file()):
        return f"no browser: {CHROMIUM} or {DRIVER} missing (run scripts/install_browser.sh)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, token: str | None = None, timeout: float = 30) -> Any:
    """urlopen with the token as ``Authorization: Bearer``."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def serve(data: Path, *args: str) -> Iterator[tuple[str, str, str]]:
    """``masquerade serve`` on a new data folder ``data``: yields (its address, the address with the
    access token that it printed, the token), then stops it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MASQUERADE_TOKEN"}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "masquerade", "serve", "--port", str(port), "--data", str(data), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    ready = None
    while True:
        printed = next(
            (m for line in list(lines) if (m := re.search(r"(http://\S+\?token=(\S+))", line))), None
        )
        if printed is not None:
            try:
                with get(url + "/api/health", printed.group(2), timeout=2) as r:
                    if r.status == 200:
                        ready = printed
                        break
            except OSError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"masquerade serve did not start: {''.join(lines)[-2000:]}")
        time.sleep(0.3)
    try:
        yield url, ready.group(1), ready.group(2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def chromium(profile: Path, downloads: Path, size: tuple[int, int] = (1400, 1000)) -> Any:
    """Headless Chromium (Selenium), saving downloads into ``downloads`` and keeping the console log
    (Content-Security-Policy reports)."""
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
        f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "--hide-scrollbars",
    ):  # fmt: skip
        opts.add_argument(flag)
    opts.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see Content-Security-Policy reports
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=opts)
    driver.set_page_load_timeout(30)
    return driver


def console_problems(driver: Any) -> list[str]:
    """The console's Content-Security-Policy reports and errors since the last call (but the browser's
    own request for /favicon.ico, which the server does not have)."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if ("Content Security Policy" in e["message"] or e.get("level") == "SEVERE")
        and "/favicon.ico" not in e["message"]
    ]


def csp_reports(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


IMG_PIXELS_JS = (
    "const img = document.getElementById(arguments[0]), n = arguments[1];"
    "const c = document.createElement('canvas'); c.width = n; c.height = n;"
    "const g = c.getContext('2d'); g.drawImage(img, 0, 0, n, n);"
    "return Array.from(g.getImageData(0, 0, n, n).data);"
)


def img_pixels(run_js: Callable[..., Any], element_id: str, size: int = 160) -> np.ndarray:
    """The picture an <img> shows, drawn into a canvas of size × size (RGB); ``run_js(script, *args)``
    runs a script in the page (Selenium's ``execute_script``, or the Firefox test's Marionette)."""
    data = run_js(IMG_PIXELS_JS, element_id, size)
    return np.asarray(data, np.uint8).reshape(size, size, 4)[..., :3]
