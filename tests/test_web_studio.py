"""The web studio in a real browser (Debian's Chromium driven by Selenium, against ``masquerade serve``):
the one-frame preview appears and changes with an option, then the swap and its before/after slider
and provenance summary; the people of a group video are listed with their time on screen and picking
the second one swaps only that person (checked by identity in the output frames); trimming gives the
frames of start…end; a batch of photos gives one result per file and a zip of them.

With ``MASQUERADE_SCREENSHOTS=<folder>`` the photo and the video tests save small screenshots of the
page there (``studio-photo.png``, ``studio-video.png``; the README's are made so, into
docs/screenshots/)."""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from masquerade import load_image, sample_path

pytestmark = pytest.mark.slow  # a real browser, real swaps

pytest.importorskip("fastapi")
pytest.importorskip("selenium.webdriver")

import web_fixtures as web  # noqa: E402
from conftest import LFW, SHARED  # noqa: E402

if (why := web.browser_missing()) is not None:
    pytest.skip(why, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

VIDEOS = SHARED / "videos"
needs_videos = pytest.mark.skipif(not VIDEOS.is_dir(), reason=f"no shared videos at {VIDEOS}")
HOPPER = str(Path(sample_path("grace_hopper")).resolve())
ASTRONAUT = str(Path(sample_path("astronaut")).resolve())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``masquerade serve`` on a new data folder: (address, address with the token, token)."""
    yield from web.serve(tmp_path_factory.mktemp("studio-data"))


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = web.chromium(tmp_path_factory.mktemp("chrome-profile"), tmp_path_factory.mktemp("downloads"))
    yield d
    d.quit()


@pytest.fixture
def page(server, driver):
    """The page, freshly loaded and signed in, with its options read from the server."""
    url, ready, _ = server
    driver.get(ready)
    wait = WebDriverWait(driver, 60)
    wait.until(lambda d: d.current_url == url + "/")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#swapper option"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#common-options [data-name]"))
    web.console_problems(driver)  # start with an empty log
    return driver


def _api(server: tuple[str, str, str], path: str) -> Any:
    url, _, token = server
    with web.get(url + path, token, timeout=120) as r:
        body = r.read()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body


def _choose(driver, input_id: str, *paths: str) -> None:
    driver.find_element(By.ID, input_id).send_keys("\n".join(paths))


def _wait_source(driver) -> None:
    WebDriverWait(driver, 60).until(lambda d: "face" in d.find_element(By.ID, "source-note").text)
    assert not driver.find_elements(By.CSS_SELECTOR, "#source-note .error")


def _preview_seq(driver) -> int:
    return int(driver.find_element(By.ID, "preview-img").get_attribute("data-seq") or 0)


def _wait_preview(driver, after: int, timeout: float = 60) -> int:
    """Waits for a preview newer than number ``after``; its number."""
    WebDriverWait(driver, timeout).until(
        lambda d: _preview_seq(d) > after or d.find_elements(By.CSS_SELECTOR, "#preview-note .error")
    )
    assert not driver.find_elements(By.CSS_SELECTOR, "#preview-note .error"), driver.find_element(
        By.ID, "preview-note"
    ).text
    img = driver.find_element(By.ID, "preview-img")
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return arguments[0].complete", img))
    return _preview_seq(driver)


def _natural_width(driver, img) -> int:
    return int(driver.execute_script("return arguments[0].naturalWidth", img))


def _rows(driver) -> list[str]:
    """The batch's rows: the state of each."""
    return [r.get_attribute("data-status") for r in driver.find_elements(By.CSS_SELECTOR, "#batch-list tr")]


def _wait_done(driver, timeout: float) -> list[str]:
    """Waits for the job to finish; the status lines seen meanwhile (it must end done)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = driver.find_element(By.ID, "status").text
        if not seen or seen[-1] != text:
            seen.append(text)
        if re.match(r"(done|failed|cancelled|interrupted)\b", text):
            break
        time.sleep(0.25)
    assert seen[-1].startswith("done"), seen
    return seen


def _screenshot(driver, name: str) -> None:
    """Saves the page (down to the gallery, at most 1500 px) as a small PNG into $MASQUERADE_SCREENSHOTS."""
    folder = os.environ.get("MASQUERADE_SCREENSHOTS")
    if not folder:
        return
    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    size = driver.get_window_size()
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);")
    bottom = driver.find_element(By.ID, "gallery").location["y"]  # the page down to the gallery
    inner = driver.execute_script("return window.innerHeight")
    driver.set_window_size(size["width"], size["height"] - inner + min(1500, max(600, bottom)))
    time.sleep(0.3)
    try:
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    finally:
        driver.set_window_size(size["width"], size["height"])
    shot = shot.crop((0, 0, shot.width, min(shot.height, bottom)))
    width = 1100
    if shot.width > width:
        shot = shot.resize((width, round(shot.height * width / shot.width)), Image.Resampling.LANCZOS)
    data = b""
    for colours in (256, 192, 128, 96, 64, 40, 24):
        buf = io.BytesIO()
        shot.quantize(colours, method=Image.Quantize.MEDIANCUT).save(buf, "PNG", optimize=True)
        data = buf.getvalue()
        if len(data) <= 150_000:
            break
    (out / name).write_bytes(data)


def test_photo_preview_swap_compare_and_provenance(server, page) -> None:
    driver = page
    _choose(driver, "source-file", HOPPER)
    _choose(driver, "target-file", ASTRONAUT)
    _wait_source(driver)
    seq = _wait_preview(driver, 0)
    note = driver.find_element(By.ID, "preview-note").text
    assert re.search(r"preview \d+ ms", note) and "1 face swapped" in note, note
    before = web.img_pixels(driver.execute_script, "preview-img")
    # an option changed: a new preview, different from the first
    Select(driver.find_element(By.ID, "opt-mask")).select_by_value("skin")
    seq = _wait_preview(driver, seq)
    after = web.img_pixels(driver.execute_script, "preview-img")
    changed = np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 12
    assert changed.sum() > 30, changed.sum()  # the eyes and the mouth come back from the target
    driver.find_element(By.ID, "start").click()
    _wait_done(driver, 180)
    result = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "result-media"))
    WebDriverWait(driver, 30).until(lambda d: _natural_width(d, result) == 512)
    # the before/after slider, by keyboard: the result shows right of the line
    slider = driver.find_element(By.ID, "compare-range")
    assert slider.get_attribute("value") == "50" and "50%" in (result.get_attribute("style") or "")
    slider.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT)
    assert slider.get_attribute("value") == "48" and "48%" in (result.get_attribute("style") or "")
    before_img = driver.find_element(By.ID, "result-before")
    WebDriverWait(driver, 30).until(lambda d: _natural_width(d, before_img) > 0)
    assert driver.find_element(By.ID, "download").get_attribute("download") == "astronaut-swapped.png"
    # the provenance summary of the result
    found = "#verify-watermark, #verify .error"
    wm = WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, found))[0]
    assert re.match(r"watermark present \(z = \d+\.\d\)", wm.text), wm.text
    assert "made by masquerade" in driver.find_element(By.ID, "verify-verdict").text
    assert driver.find_element(By.ID, "verify-manifest").text.startswith("C2PA manifest: ")
    _screenshot(driver, "studio-photo.png")
    assert web.console_problems(driver) == []


def _iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def _frames(path: Path) -> tuple[list[np.ndarray], float]:
    import av

    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], fps


@needs_videos
def test_video_people_pick_the_second_one(server, page, tmp_path) -> None:
    from masquerade import FaceAnalyzer
    from masquerade.identity.encoder import euclidean_distance

    driver = page
    clip = VIDEOS / "group_1080p.mp4"
    _choose(driver, "source-file", HOPPER)
    _choose(driver, "target-file", str(clip))
    _wait_source(driver)
    people_buttons = "#target-faces button"
    buttons = WebDriverWait(driver, 240).until(lambda d: d.find_elements(By.CSS_SELECTOR, people_buttons))
    assert len(buttons) >= 2
    for b in buttons:
        assert re.fullmatch(r"\d+\.\d s on screen", b.find_element(By.CLASS_NAME, "secs").text)
    thumbnail = buttons[0].find_element(By.TAG_NAME, "img").get_attribute("src")
    upload_id = re.search(r"/api/uploads/(\w+)/", thumbnail)
    assert upload_id is not None
    described = _api(server, f"/api/uploads/{upload_id.group(1)}")
    people = described["faces"]
    assert [p["seconds"] for p in people] == sorted((p["seconds"] for p in people), reverse=True)
    # pick the second person: a checkbox-like button, by keyboard
    second = buttons[1]
    person = people[int(second.get_attribute("data-index"))]
    second.send_keys(Keys.SPACE)
    assert second.get_attribute("aria-pressed") == "true"
    assert driver.find_element(By.ID, "target-faces-mode").get_attribute("value") == "one"
    # trim to one second around the frame the person's thumbnail comes from, with the scrubber
    duration = float(described["duration"])
    start = round(min(max(0.0, person["time"] - 0.5), duration - 1.0), 2)
    scrub = (
        "const s = document.getElementById('scrubber'); s.value = arguments[0];"
        "s.dispatchEvent(new Event('input'));"
    )
    driver.execute_script(scrub, start)
    driver.find_element(By.ID, "set-start").click()
    driver.execute_script(scrub, start + 1.0)
    driver.find_element(By.ID, "set-end").click()
    start = float(driver.find_element(By.ID, "trim-start").get_attribute("value"))
    end = float(driver.find_element(By.ID, "trim-end").get_attribute("value"))
    assert 0.9 <= end - start <= 1.1
    assert re.search(r"1\.\d\d s, about \d+ frames", driver.find_element(By.ID, "trim-length").text)
    driver.execute_script(scrub, person["time"])  # back to the person picked: the preview shows them swapped
    at = f"at {float(driver.find_element(By.ID, 'scrubber').get_attribute('value')):.2f} s"
    WebDriverWait(driver, 120).until(lambda d: d.find_element(By.ID, "preview-note").text.endswith(at))
    _screenshot(driver, "studio-video.png")
    driver.find_element(By.ID, "start").click()
    seen = _wait_done(driver, 600)
    assert any(re.search(r"frame \d+ of \d+", s) for s in seen), seen
    assert driver.find_element(By.ID, "result-media").tag_name == "video"
    assert driver.find_element(By.ID, "result-before").tag_name == "video"  # side by side
    driver.find_element(By.ID, "view-toggle").click()
    assert not driver.find_element(By.ID, "result-before").is_displayed()
    job_id = driver.find_element(By.ID, "download").get_attribute("href").split("/api/jobs/")[1].split("/")[0]
    out = tmp_path / "result.mp4"
    out.write_bytes(_api(server, f"/api/jobs/{job_id}/result"))

    swapped, fps = _frames(out)
    original, _ = _frames(clip)
    first = round(start * fps)
    assert abs(len(swapped) - (end - start) * fps) <= 1
    with FaceAnalyzer(identity=True) as fa:
        e_src = fa.get(load_image(HOPPER).rgb)[0].embedding
        at = original[min(len(original) - 1, round(person["time"] * fps))]
        e_person = max(fa.get(at), key=lambda f: _iou(f.box, person["box"])).embedding
        gains: list[tuple[bool, float, float]] = []  # (the picked person?, gain towards the source, change)
        for j in (0, len(swapped) // 2, len(swapped) - 1):
            orig_faces = fa.get(original[first + j])
            out_faces = fa.get(swapped[j])
            picked = min(orig_faces, key=lambda f: euclidean_distance(f.embedding, e_person))
            for f in orig_faces:
                match = max(out_faces, key=lambda g: _iou(f.box, g.box), default=None)
                if match is None or _iou(f.box, match.box) < 0.3:
                    continue
                gain = euclidean_distance(f.embedding, e_src) - euclidean_distance(match.embedding, e_src)
                gains.append((f is picked, gain, euclidean_distance(f.embedding, match.embedding)))
    mine = [g for p, g, _ in gains if p]
    others = [g for p, g, _ in gains if not p]
    assert mine and others, gains
    assert min(mine) > 0.1, gains  # the picked person moved towards the source identity …
    assert max(others) < min(mine) / 3, gains  # … and nobody else did


@needs_videos
def test_trim_gives_the_frames_of_start_to_end(server, page, tmp_path) -> None:
    import av

    driver = page
    clip = VIDEOS / "music_720p.mp4"
    _choose(driver, "source-file", HOPPER)
    _choose(driver, "target-file", str(clip))
    _wait_source(driver)
    WebDriverWait(driver, 240).until(lambda d: d.find_element(By.ID, "video-controls").is_displayed())
    driver.find_element(By.ID, "trim-start").send_keys("2.0")
    driver.find_element(By.ID, "trim-end").send_keys("3.0")
    assert "trimmed to 2.00 s – 3.00 s: 1.00 s" in driver.find_element(By.ID, "trim-length").text
    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "start").is_enabled())
    driver.find_element(By.ID, "start").click()
    _wait_done(driver, 600)
    job_id = driver.find_element(By.ID, "download").get_attribute("href").split("/api/jobs/")[1].split("/")[0]
    job = _api(server, f"/api/jobs/{job_id}")
    assert (job["options"]["start"], job["options"]["end"]) == (2.0, 3.0)
    out = tmp_path / "trimmed.mp4"
    out.write_bytes(_api(server, f"/api/jobs/{job_id}/result"))
    with av.open(str(clip)) as c:
        fps = float(c.streams.video[0].average_rate)
    with av.open(str(out)) as c:
        n = sum(1 for _ in c.decode(video=0))
    assert abs(n - 1.0 * fps) <= 1, (n, fps)


def _batch_photos(tmp_path: Path) -> list[str]:
    """The astronaut and two LFW photos (without LFW: the two samples and a mirrored astronaut)."""
    lfw = [LFW / "images" / n / f"{n}_0001.jpg" for n in ("Colin_Powell", "George_W_Bush")]
    if all(p.is_file() for p in lfw):
        return [ASTRONAUT, *map(str, lfw)]
    from masquerade import save_image

    mirrored = tmp_path / "astronaut-mirrored.png"
    save_image(mirrored, np.ascontiguousarray(load_image(ASTRONAUT).rgb[:, ::-1]))
    return [ASTRONAUT, HOPPER, str(mirrored)]


def test_batch_gives_one_result_per_file(server, page, tmp_path) -> None:
    driver = page
    photos = _batch_photos(tmp_path)
    _choose(driver, "source-file", HOPPER)
    _choose(driver, "target-file", *photos)
    _wait_source(driver)
    WebDriverWait(driver, 120).until(lambda d: _rows(d) == ["ready"] * 3)
    assert not driver.find_element(By.ID, "stage-box").is_displayed()  # no preview nor face picking per file
    assert not driver.find_element(By.ID, "people").is_displayed()
    start = driver.find_element(By.ID, "start")
    assert start.text == "Swap all 3"
    start.click()
    WebDriverWait(driver, 300).until(lambda d: _rows(d) == ["done"] * 3)
    links = driver.find_elements(By.CSS_SELECTOR, "#batch-list a")
    names = [Path(p).stem + "-swapped.png" for p in photos]
    assert [a.get_attribute("download") for a in links] == names
    zip_link = driver.find_element(By.ID, "batch-zip")
    assert zip_link.is_displayed()
    url = server[0]
    with zipfile.ZipFile(io.BytesIO(_api(server, zip_link.get_attribute("href").removeprefix(url)))) as z:
        entries = z.namelist()
        assert sorted(entries) == sorted(names)
        for name, photo in zip(names, photos, strict=True):
            (tmp_path / name).write_bytes(z.read(name))
            assert load_image(tmp_path / name).rgb.shape == load_image(photo).rgb.shape
    assert web.console_problems(driver) == []
