"""End to end in a real browser: Debian's Chromium, driven by Selenium, against ``masquerade serve``
started as a user starts it. Opens the address with the access token that the first start prints (the
page sets its cookie and drops the token from the address), uploads the two sample photos, picks the
faces, runs a swap, checks that the result image appears, downloads it and compares it with the API's
result; the page's Content-Security-Policy blocks nothing of its own. Without the token the page is
refused.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (see tests/web_fixtures.py)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
from pathlib import Path

import pytest

from masquerade import load_image, sample_path

pytestmark = pytest.mark.slow  # a real browser

pytest.importorskip("fastapi")
pytest.importorskip("selenium.webdriver")

import web_fixtures as web  # noqa: E402

if (why := web.browser_missing()) is not None:
    pytest.skip(why, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

_get = web.get


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``masquerade serve`` on a new data folder: (its address, the address with the access token
    that it printed, the token)."""
    data = tmp_path_factory.mktemp("web-data")
    for started in web.serve(data):
        assert (data / "access-token").read_text().strip() == started[2]  # kept, for the next start
        yield started


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    driver = web.chromium(tmp_path_factory.mktemp("chrome-profile"), downloads)
    yield driver, downloads
    driver.quit()


def _csp_reports(driver) -> list[str]:
    return web.csp_reports(driver)


def test_swap_in_the_browser(server, browser, tmp_path) -> None:
    url, ready, token = server
    driver, downloads = browser
    driver.get(ready)  # the address printed at the first start
    assert "masquerade" in driver.title
    # the token is no longer in the address; the browser holds it as an HttpOnly, strict cookie
    WebDriverWait(driver, 10).until(lambda d: d.current_url == url + "/")
    (cookie,) = [c for c in driver.get_cookies() if c["name"].startswith("masquerade-")]
    assert cookie["value"] == token and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert driver.execute_script("return document.cookie") == ""  # not readable by scripts
    wait = WebDriverWait(driver, 60)
    # the swapper list comes from the API
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#swapper option"))
    # upload the source and the target as a user does, through the file inputs
    driver.find_element(By.ID, "source-file").send_keys(str(Path(sample_path("grace_hopper")).resolve()))
    driver.find_element(By.ID, "target-file").send_keys(str(Path(sample_path("astronaut")).resolve()))
    for which in ("source", "target"):
        thumb = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f"#{which}-faces img.face")))
        wait.until(lambda d, t=thumb: d.execute_script("return arguments[0].naturalWidth", t) > 0)
    assert "1 face found" in driver.find_element(By.ID, "target-note").text
    driver.find_element(By.CSS_SELECTOR, "#target-faces img.face").click()  # pick the target's face
    picked = driver.find_element(By.CSS_SELECTOR, "#target-faces button")  # a button, pressed
    assert picked.get_attribute("aria-pressed") == "true"
    assert driver.find_element(By.ID, "target-faces-mode").get_attribute("value") == "one"
    start = wait.until(EC.element_to_be_clickable((By.ID, "start")))
    start.click()
    # progress, then the result image appears
    img = WebDriverWait(driver, 180).until(EC.presence_of_element_located((By.ID, "result-media")))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return arguments[0].naturalWidth", img) > 0)
    assert driver.execute_script("return arguments[0].naturalWidth", img) == 512
    assert driver.find_element(By.ID, "status").text.startswith("done")
    link = driver.find_element(By.ID, "download")
    href = link.get_attribute("href")
    assert link.is_displayed() and "/api/jobs/" in href
    # the gallery remembers the job
    assert driver.find_elements(By.CSS_SELECTOR, "#gallery-list li a img")
    # download it through the link, as a user does, and compare with the API's file
    link.click()
    deadline = time.monotonic() + 30
    got: list[Path] = []
    while time.monotonic() < deadline:
        got = [p for p in downloads.iterdir() if p.suffix == ".png"]
        if got and not list(downloads.glob("*.crdownload")):
            break
        time.sleep(0.3)
    assert got, f"nothing downloaded into {downloads}: {list(downloads.iterdir())}"
    with _get(href, token) as r:
        api_bytes = r.read()
    assert got[0].read_bytes() == api_bytes
    shutil.copy(got[0], tmp_path / "result.png")
    out = load_image(tmp_path / "result.png").rgb
    src = load_image(sample_path("astronaut")).rgb
    assert out.shape == src.shape and (out != src).any()
    assert _csp_reports(driver) == []  # the policy blocked nothing the page does


def test_a_new_tab_uses_the_cookie(server, browser) -> None:
    """Once signed in, the plain address works (the cookie), also after a reload."""
    url, _, _ = server
    driver, _ = browser
    driver.get(url + "/")
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#swapper option"))
    driver.refresh()
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#swapper option"))
    assert driver.find_element(By.ID, "status").text == ""


def test_bad_file_shows_an_error(server, browser, tmp_path) -> None:
    url, _, _ = server
    driver, _ = browser
    driver.get(url + "/")
    bad = tmp_path / "not-a-photo.jpg"
    bad.write_bytes(b"this is text, not a JPEG")
    driver.find_element(By.ID, "source-file").send_keys(str(bad))
    err = WebDriverWait(driver, 30).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "#source-note .error"))
    )
    assert "not an image or a video" in err.text
    assert not driver.find_element(By.ID, "start").is_enabled()


def test_without_the_token_the_page_is_refused(server, browser) -> None:
    url, ready, token = server
    driver, _ = browser
    driver.delete_all_cookies()
    driver.get(url + "/")
    body = json.loads(driver.find_element(By.TAG_NAME, "body").text)
    assert "access token" in body["detail"] and "masquerade" not in driver.title
    driver.get(url + "/?token=" + "x" * len(token))
    assert "wrong access token" in driver.find_element(By.TAG_NAME, "body").text
    with pytest.raises(urllib.error.HTTPError) as refused:
        _get(url + "/api/health")
    assert refused.value.code == 401
    driver.get(ready)  # and the printed address lets it in again
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#swapper option"))
