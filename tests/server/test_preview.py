"""``POST /api/preview`` and ``GET /api/uploads/{id}/frame.jpg``: a job's swap of one picture in the server's
process, on real faces (the bundled samples, and a real 720p video when the shared data is there)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import SHARED
from test_server import _client, _one_line_error
from test_server import _uploaded as _upload

from masquerade import sample_path
from masquerade.provenance.watermark import Watermarker
from masquerade.server.app import ServerConfig

VIDEO = SHARED / "videos" / "music_720p.mp4"


def _picture(r) -> np.ndarray:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    rgb = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
    assert rgb is not None
    return cv2.cvtColor(rgb, cv2.COLOR_BGR2RGB)


def _regions(shape: tuple[int, ...], box: list[float], scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(the face box, everything well away from it) as masks of a picture of ``shape``."""
    x0, y0, x1, y1 = (v * scale for v in box)
    h, w = shape[:2]
    face = np.zeros((h, w), bool)
    face[int(y0) : int(y1), int(x0) : int(x1)] = True
    mx, my = 0.5 * (x1 - x0), 0.6 * (y1 - y0)
    near = np.zeros((h, w), bool)
    near[max(0, int(y0 - my)) : int(y1 + my), max(0, int(x0 - mx)) : int(x1 + mx)] = True
    return face, ~near


def _diff(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16))[where].mean())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # no job worker (concurrency 0): previews run in the server's own process
    cfg = ServerConfig(data=tmp_path_factory.mktemp("preview"), concurrency=0, allow_no_provenance=True)
    with _client(cfg) as c:
        yield c


@pytest.fixture(scope="module")
def photos(server):
    src = _upload(server, sample_path("grace_hopper"), "hopper.jpg")
    tgt = _upload(server, sample_path("astronaut"), "astronaut.jpg")
    return src, tgt


@pytest.fixture(scope="module")
def video(server):
    if not VIDEO.is_file():
        pytest.skip(f"{VIDEO} is not there (the shared data)")
    return _upload(server, VIDEO, "music.mp4")


def test_preview_swaps_the_face_and_leaves_the_rest(server, photos) -> None:
    src, tgt = photos
    body = {"source": src["id"], "target": tgt["id"], "provenance": False}
    r = server.post("/api/preview", json=body)
    after = _picture(r)
    assert r.headers["x-faces-swapped"] == "1" and float(r.headers["x-preview-ms"]) > 0
    before = _picture(server.get(f"/api/uploads/{tgt['id']}/frame.jpg"))
    assert after.shape == before.shape == (512, 512, 3)  # the astronaut is under 960 px: as it is
    face, rest = _regions(after.shape, tgt["faces"][0]["box"])
    assert _diff(after, before, face) > 12  # another face
    assert _diff(after, before, rest) < 0.5  # the same picture around it (JPEG blocks of the same pixels)
    assert server.post("/api/preview", json=body).content == r.content  # remembered faces: the same swap

    small = _picture(server.post("/api/preview", json={**body, "max_side": 200}))
    assert max(small.shape[:2]) == 200
    assert _picture(server.get(f"/api/uploads/{tgt['id']}/frame.jpg?max_side=200")).shape == small.shape


def test_each_option_changes_the_face_only(server, photos) -> None:
    src, tgt = photos
    body = {"source": src["id"], "target": tgt["id"], "provenance": False}
    base = _picture(server.post("/api/preview", json=body))
    face, rest = _regions(base.shape, tgt["faces"][0]["box"])
    for change in ({"mask": "skin"}, {"colour": "none"}, {"blend": "poisson"}):
        other = _picture(server.post("/api/preview", json={**body, **change}))
        assert _diff(other, base, face) > 1.0, change
        assert _diff(other, base, rest) < 0.5, change


def test_preview_carries_the_watermark_when_provenance_is_on(server, photos) -> None:
    src, tgt = photos
    body = {"source": src["id"], "target": tgt["id"]}
    marked = _picture(server.post("/api/preview", json=body))
    found = Watermarker().detect(marked)
    assert found.present and found.content_id is not None, found
    small = _picture(server.post("/api/preview", json={**body, "max_side": 300}))
    assert small.shape == (300, 300, 3) and Watermarker().detect(small).present  # marked as sent
    plain = _picture(server.post("/api/preview", json={**body, "provenance": False}))
    assert not Watermarker().detect(plain).present
    assert not Watermarker().detect(_picture(server.get(f"/api/uploads/{tgt['id']}/frame.jpg"))).present


def test_video_preview_at_a_time(server, photos, video) -> None:
    src, _ = photos
    body = {"source": src["id"], "target": video["id"], "provenance": False}
    at0 = _picture(server.post("/api/preview", json={**body, "time": 0.0}))
    r = server.post("/api/preview", json={**body, "time": 2.0})
    at2 = _picture(r)
    assert at0.shape == at2.shape == (540, 960, 3)  # 1280×720 scaled to 960 px
    assert r.headers["x-faces-swapped"] == "1"
    assert _diff(at0, at2, np.ones(at0.shape[:2], bool)) > 2  # another moment of the video
    before = _picture(server.get(f"/api/uploads/{video['id']}/frame.jpg?time=2.0"))
    diff = np.abs(at2.astype(np.int16) - before.astype(np.int16)).max(axis=2)
    changed = diff > 24
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 500  # the face
    face = np.zeros_like(changed)
    face[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] = True
    assert face.sum() < 0.15 * face.size  # in one small region
    assert _diff(at2, before, ~face) < 1.0  # the frame.jpg at the same time outside it
    # the default time is the job's start
    start = _picture(server.post("/api/preview", json={**body, "start": 2.0}))
    assert np.array_equal(start, at2)


def test_preview_errors_are_the_jobs(server, photos, video) -> None:
    src, tgt = photos
    body = {"source": src["id"], "target": tgt["id"]}
    r = server.post("/api/preview", json={**body, "target": "0" * 32})
    assert r.status_code == 404 and "no upload" in r.json()["detail"]
    assert server.post("/api/preview", json={**body, "source": "nope"}).status_code == 404
    assert server.get("/api/uploads/nope/frame.jpg").status_code == 404
    _one_line_error(server.post("/api/preview", json={**body, "mask": "everything"}), 422, "mask")
    _one_line_error(server.post("/api/preview", json={**body, "options": {"gaze": "up"}}), 422, "gaze")
    _one_line_error(server.post("/api/preview", json={**body, "target_faces": "one"}), 422, "target_face")
    _one_line_error(server.post("/api/preview", json={**body, "max_side": 0}), 422, "max_side")
    late = {**body, "target": video["id"], "time": 60}
    _one_line_error(server.post("/api/preview", json=late), 422, "past the end")
    _one_line_error(server.get(f"/api/uploads/{video['id']}/frame.jpg?time=60"), 422, "past the end")
    _one_line_error(server.get(f"/api/uploads/{video['id']}/frame.jpg?time=-1"), 422, "time")


def test_a_preview_waiting_behind_a_newer_one_is_skipped(server, photos) -> None:
    """While the analyzer is busy, two previews of one target are asked for: the older is skipped
    (Superseded, the API's 409) without being computed, the newer is made; a preview of another target
    is not affected. The unswapped picture does not wait for the analyzer at all."""
    import threading

    from masquerade.server.app import _Analyzer
    from masquerade.server.preview import Previewer, Superseded
    from masquerade.server.requests import JobSettings, PreviewRequest
    from masquerade.server.store import JobStore

    src, tgt = photos
    store = JobStore(server.app.state.config.data)
    analyzer = _Analyzer()
    previewer = Previewer(store, analyzer, JobSettings())
    body = {"source": src["id"], "target": tgt["id"]}
    outcome: dict[str, object] = {}

    def ask(name: str, **extra: object) -> None:
        try:
            outcome[name] = previewer.preview(PreviewRequest(**body, **extra))
        except Superseded as exc:
            outcome[name] = exc

    try:
        with analyzer.held():  # a preview (or an upload) in progress
            first = threading.Thread(target=ask, args=("first",), kwargs={"mask": "skin"})
            first.start()
            while not previewer._latest:  # it has been numbered and waits for the analyzer
                first.join(0.01)
            assert previewer.frame(tgt["id"], None, 256)[:2] == b"\xff\xd8"  # not waiting
            second = threading.Thread(target=ask, args=("second",))
            second.start()
            while len(outcome) == 0 and previewer._latest[tgt["id"]] == 1:
                second.join(0.01)
        first.join(60)
        second.join(60)
        assert isinstance(outcome["first"], Superseded), outcome
        assert outcome["second"].faces == 1 and outcome["second"].jpeg[:2] == b"\xff\xd8"
    finally:
        previewer.close()
        analyzer.close()
    r = server.post("/api/preview", json=body)  # through the API, alone: made
    assert r.status_code == 200 and "X-Preview-Wait-Ms" in r.headers
