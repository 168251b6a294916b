"""The people of an uploaded video (:mod:`masquerade.server.people`): frames sampled across the whole
video, faces grouped by identity. On real videos of the shared data: a street group filmed in 1080p
(several people, faces of 40 to 110 pixels) and a talking head; then through the API, that picking
one person of the group (``target_faces: "one"``) swaps that person and no one else."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import SHARED
from PIL import Image

from masquerade import FaceAnalyzer, load_image, sample_path
from masquerade.analysis.detection import iou
from masquerade.analysis.selection import match_reference
from masquerade.identity.encoder import SAME_PERSON_DISTANCE, euclidean_distance
from masquerade.server.people import find_people, group_faces, sample_frames
from masquerade.video.probe import iter_frames, probe

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

GROUP = SHARED / "videos" / "group_1080p.mp4"
TALKING = SHARED / "videos" / "talking_512_d0.mp4"


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is not there (the shared data)")
    return path


@pytest.fixture(scope="module")
def analyzer():
    with FaceAnalyzer(identity=True) as fa:
        yield fa


@pytest.fixture(scope="module")
def group(analyzer):
    return find_people(_need(GROUP), analyzer.get)


def _face_at(analyzer, path: Path, t: float, box: np.ndarray):
    """The face with ``box`` in the frame of ``path`` at ``t``."""
    ((got, rgb),) = list(sample_frames(path, [t]))
    assert abs(got - t) < 1e-6
    face = max(analyzer.get(rgb), key=lambda f: iou(f.box, box))
    assert iou(face.box, box) > 0.9
    return face


def test_the_group_clip_has_several_people_one_face_a_sample(group) -> None:
    info = probe(GROUP)
    people = group.people
    assert group.sampled_frames >= 4 and len(people) >= 2
    assert abs(group.duration - info.duration) < 0.1
    assert [p.seconds for p in people] == sorted((p.seconds for p in people), reverse=True)
    assert people[0].appearances >= group.sampled_frames - 1  # someone is there nearly all along
    for p in people:
        # a person is never two faces of one sample: its appearances are at distinct sample times
        assert len(set(p.seen_at)) == len(p.seen_at) == p.appearances >= 1
        assert p.first_seen == p.seen_at[0] <= p.time and p.time in p.seen_at
        assert 0 < p.seconds <= group.duration + 1e-9
        assert p.seconds == pytest.approx(min(group.duration, p.appearances * group.interval))
        assert p.score >= 0.5 and p.box[2] > p.box[0] and p.box[3] > p.box[1]
        assert Image.open(io.BytesIO(p.thumbnail)).format == "JPEG"
    assert sum(p.appearances for p in people) >= 2 * group.sampled_frames  # several faces a sample


def test_each_person_matches_its_own_face_not_the_others(group, analyzer) -> None:
    """Picking person k (its embedding as the reference, the other people's as those not to swap, as a
    job's request makes them) selects the face of its thumbnail and no other person's thumbnail face."""
    faces = [_face_at(analyzer, GROUP, p.time, p.box).embedding for p in group.people]
    refs = [p.embedding for p in group.people]
    for k in range(len(refs)):
        others = refs[:k] + refs[k + 1 :]
        picked = [match_reference(f, [refs[k]], SAME_PERSON_DISTANCE, others) == 0 for f in faces]
        assert picked == [j == k for j in range(len(faces))], (k, picked)


def test_the_talking_head_is_one_person_all_along(analyzer) -> None:
    found = find_people(_need(TALKING), analyzer.get)
    duration = probe(TALKING).duration
    assert found.sampled_frames >= 3
    (person,) = found.people
    assert person.appearances == found.sampled_frames
    assert person.seconds == pytest.approx(duration, abs=0.05)


def test_sampled_frames_are_the_video_frames_at_their_times() -> None:
    """Sampling decodes only reference frames, seeking where that saves decoding: each frame it gives
    is the very frame of the video at the time it gives."""
    path = _need(TALKING)
    frames = {t: rgb for rgb, t in iter_frames(path)}
    got = list(sample_frames(path, [0.0, 0.5, 1.0, 2.5, 2.51, 9.0]))
    times = [t for t, _ in got]
    assert times == sorted(set(times)) and len(got) >= 4  # a frame once; none past the end
    for t, rgb in got:
        assert np.array_equal(rgb, frames[t])
    assert abs(times[0]) < 0.1 and abs(times[1] - 0.5) < 0.1


def test_faces_of_one_sample_are_never_grouped() -> None:
    """Two faces of one frame are two people however alike their embeddings; two lone faces need to be
    nearer to be one person than a face to a group."""
    assert group_faces(np.zeros((2, 128)), [0, 0]) == [[0], [1]]
    e = np.array([[0.0, 0.0], [0.01, 0.0], [0.02, 0.0]])
    assert group_faces(e, [0, 0, 1]) == [[0], [1, 2]]  # the third face goes to the nearer of the two
    e = np.array([[0.0, 0.0], [0.05, 0.0], [0.52, 0.0]])
    assert group_faces(e[[0, 2]], [0, 1]) == [[0], [1]]  # 0.52 apart: over a lone pair's 0.5
    assert group_faces(e, [0, 1, 2]) == [[0, 1, 2]]  # 0.495 from the group on average


# ---- through the API


@pytest.mark.slow
def test_one_person_of_the_group_is_swapped(tmp_path, analyzer) -> None:
    """The upload lists the group's people; a job for person 1 over a second of the clip swaps that
    person's face towards the source in every frame, and leaves the others' faces as they were."""
    pytest.importorskip("fastapi")
    from test_server import _client, _wait
    from test_server import _uploaded as _upload

    from masquerade.server.app import ServerConfig

    with _client(ServerConfig(data=tmp_path / "data")) as c:
        src = _upload(c, sample_path("grace_hopper"), "hopper.jpg")
        tgt = _upload(c, _need(GROUP), "group.mp4")
        people = tgt["faces"]
        assert tgt["kind"] == "video" and tgt["sampled_frames"] >= 4 and len(people) >= 2
        for k, p in enumerate(people):
            assert p["index"] == k and p["thumbnail"] == f"/api/uploads/{tgt['id']}/faces/{k}.jpg"
            assert {"box", "score", "time", "seconds", "first_seen", "appearances"} <= set(p)
            thumb = c.get(p["thumbnail"])
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert [p["seconds"] for p in people] == sorted((p["seconds"] for p in people), reverse=True)
        assert c.get(f"/api/uploads/{tgt['id']}").json()["faces"] == people
        refs = np.load(tmp_path / "data" / "uploads" / tgt["id"] / "faces.npy")
        assert refs.shape == (len(people), 128)

        body = {"source": src["id"], "target": tgt["id"], "target_faces": "one", "target_face": 1}
        job = _wait(c, c.post("/api/jobs", json={**body, "start": 2.0, "end": 3.0}).json()["id"], 600.0)
        assert job["status"] == "done", job
        result = tmp_path / "result.mp4"
        result.write_bytes(c.get(job["result_url"]).content)

    with av.open(str(result)) as f:
        swapped = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    before = [rgb for rgb, t in iter_frames(GROUP) if 2.0 - 1e-6 <= t < 3.0 - 1e-6]
    assert len(swapped) == len(before) == 25
    hopper = analyzer.get(load_image(sample_path("grace_hopper")).rgb)[0].embedding
    picked = others = 0
    for k in range(0, len(before), 6):
        for face in analyzer.get(before[k]):
            d = [euclidean_distance(face.embedding, r) for r in refs]
            x0, y0, x1, y1 = (int(v) for v in face.box)
            change = np.abs(swapped[k][y0:y1, x0:x1].astype(np.int16) - before[k][y0:y1, x0:x1]).mean()
            was = euclidean_distance(face.embedding, hopper)
            now = euclidean_distance(analyzer.identity.embed(swapped[k], face.landmarks_68), hopper)
            if int(np.argmin(d)) == 1 and d[1] <= SAME_PERSON_DISTANCE:  # person 1
                picked += 1
                assert change > 8 and now < was - 0.15, (k, face.box, change, was, now)
            else:  # as it was, but for the encoding
                others += 1
                assert change < 6 and abs(now - was) < 0.12, (k, face.box, change, was, now)
    assert picked >= 3 and others >= 8
