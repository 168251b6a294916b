"""Which faces to swap and which source each gets: ``select_faces`` on the two real faces of the pair
canvas (astronaut left and smaller, Hopper right and larger) with references from mirrored copies of
the sample photos, the argument checks, and ``TrackSelector`` over video tracks."""

from __future__ import annotations

import numpy as np
import pytest

from masquerade import FaceAnalyzer, euclidean_distance
from masquerade.analysis.selection import TrackSelector, check_selection, match_reference, select_faces
from masquerade.errors import InputError, NoFaceError
from masquerade.face import Face
from masquerade.identity.encoder import SAME_PERSON_DISTANCE
from masquerade.video.tracking import Track


@pytest.fixture(scope="module")
def faces(analyzer: FaceAnalyzer, pair_image: np.ndarray) -> dict[str, Face]:
    found = analyzer.get(pair_image)
    assert len(found) == 2
    left, right = sorted(found, key=lambda f: f.box[0])
    assert right.area > 2 * left.area
    return {"astronaut": left, "hopper": right}


@pytest.fixture(scope="module")
def refs(analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray) -> dict[str, np.ndarray]:
    """Reference embeddings from the mirrored sample photos (not the pixels of the canvas)."""
    out = {}
    for name, rgb in (("astronaut", astronaut), ("hopper", hopper)):
        (face,) = analyzer.get(np.ascontiguousarray(rgb[:, ::-1]))
        out[name] = face.embedding
    return out


def names(selected: list[tuple[Face, int]], faces: dict[str, Face]) -> list[tuple[str, int]]:
    who = {id(f): n for n, f in faces.items()}
    return [(who[id(f)], k) for f, k in selected]


# ------------------------------------------------------------------------------------ select_faces


def test_largest_takes_the_bigger_face(faces) -> None:
    both = [faces["astronaut"], faces["hopper"]]
    assert names(select_faces(both, "largest"), faces) == [("hopper", 0)]
    assert names(select_faces(both[::-1], "largest", sources=3), faces) == [("hopper", 0)]


def test_all_takes_every_face_left_to_right_with_the_one_source(faces) -> None:
    got = select_faces([faces["hopper"], faces["astronaut"]], "all")
    assert names(got, faces) == [("astronaut", 0), ("hopper", 0)]


@pytest.mark.parametrize("person", ["astronaut", "hopper"])
def test_reference_takes_only_the_matching_person(faces, refs, person) -> None:
    got = select_faces(list(faces.values()), "reference", references=[refs[person]])
    assert names(got, faces) == [(person, 0)]


def test_reference_without_a_match_says_how_close_it_came(faces, refs) -> None:
    # a reference 0.4 from Hopper's: she still matches at the default threshold, not at 0.3
    near = refs["hopper"] + 0.4 / np.sqrt(refs["hopper"].size)
    assert names(select_faces([faces["hopper"]], "reference", [near]), faces) == [("hopper", 0)]
    d = euclidean_distance(faces["hopper"].embedding, near)
    assert 0.3 < d < SAME_PERSON_DISTANCE
    with pytest.raises(
        NoFaceError,
        match=rf"^no face in the target matches the reference \(closest distance {d:.2f} > 0.30\)$",
    ):
        select_faces([faces["hopper"]], "reference", [near], threshold=0.3)
    with pytest.raises(NoFaceError, match="in the frame matches"):
        select_faces([faces["astronaut"]], "reference", [refs["hopper"]], what="frame")
    with pytest.raises(InputError, match="one reference"):
        select_faces(list(faces.values()), "reference", [refs["hopper"], refs["astronaut"]])


def test_many_without_references_gives_source_k_to_the_kth_face_from_the_left(faces) -> None:
    both = [faces["hopper"], faces["astronaut"]]
    assert names(select_faces(both, "many", sources=2), faces) == [("astronaut", 0), ("hopper", 1)]
    assert names(select_faces(both, "many", sources=1), faces) == [
        ("astronaut", 0)
    ]  # more faces than sources
    assert names(select_faces(both, "many", sources=5), faces) == [("astronaut", 0), ("hopper", 1)]


def test_many_with_references_gives_each_person_their_source(faces, refs) -> None:
    both = [faces["astronaut"], faces["hopper"]]
    got = select_faces(both, "many", references=[refs["hopper"], refs["astronaut"]], sources=2)
    assert names(got, faces) == [("astronaut", 1), ("hopper", 0)]
    # a reference nobody matches leaves only the matched person
    got = select_faces(both, "many", references=[refs["hopper"], -refs["hopper"]], sources=2)
    assert names(got, faces) == [("hopper", 0)]
    with pytest.raises(NoFaceError, match="matches any of the reference photos"):
        select_faces([faces["astronaut"]], "many", references=[refs["hopper"]], sources=1)


def test_no_faces_and_unknown_modes_are_one_line_errors(faces) -> None:
    with pytest.raises(NoFaceError, match=r"^no face found in the source$"):
        select_faces([], "all", what="source")
    with pytest.raises(InputError, match="unknown face selection 'biggest'; choose from largest, all"):
        select_faces([faces["hopper"]], "biggest")


def test_match_reference(refs) -> None:
    both = [refs["astronaut"], refs["hopper"]]
    assert match_reference(refs["hopper"], both) == 1
    assert match_reference(refs["astronaut"], both) == 0
    assert match_reference(refs["astronaut"], [refs["hopper"]]) is None  # different people
    assert match_reference(refs["astronaut"], [refs["hopper"]], threshold=10.0) == 0
    assert match_reference(None, both) is None
    assert match_reference(refs["hopper"], []) is None


@pytest.mark.parametrize(
    ("mode", "references", "sources", "message"),
    [
        ("biggest", 0, 1, "unknown face selection 'biggest'"),
        ("reference", 0, 1, "needs exactly one --reference"),
        ("reference", 2, 1, "needs exactly one --reference"),
        ("many", 1, 2, r"one --reference per --source \(2 sources, 1 references\)"),
        ("largest", 1, 1, "--reference is used with --faces reference or --faces many"),
        ("all", 1, 1, "--reference is used with"),
    ],
)
def test_check_selection_refuses(mode, references, sources, message) -> None:
    with pytest.raises(InputError, match=message):
        check_selection(mode, ["ref.jpg"] * references, sources)


@pytest.mark.parametrize(
    ("mode", "references", "sources"),
    [("largest", 0, 1), ("all", 0, 1), ("reference", 1, 1), ("many", 0, 3), ("many", 2, 2)],
)
def test_check_selection_accepts(mode, references, sources) -> None:
    check_selection(mode, ["ref.jpg"] * references, sources)


# ----------------------------------------------------------------------------------- TrackSelector


def track(i: int, face: Face, first_seen: float = 0.0) -> Track:
    return Track(id=i, box=face.box, first_seen=first_seen, embedding=face.embedding)


def test_tracks_largest_stays_on_its_choice_until_that_track_ends_or_a_cut(faces) -> None:
    a, h = track(0, faces["astronaut"]), track(1, faces["hopper"])
    sel = TrackSelector("largest")
    assert not sel.needs_identity
    assert sel.select([]) == []
    assert [t.id for t, _ in sel.select([(a, faces["astronaut"])])] == [0]
    # Hopper (larger) comes in: stay on the astronaut
    assert [t.id for t, _ in sel.select([(h, faces["hopper"]), (a, faces["astronaut"])])] == [0]
    assert a.source_index == 0 and h.source_index is None
    sel.reset()  # a scene cut: choose again
    assert [t.id for t, _ in sel.select([(a, faces["astronaut"]), (h, faces["hopper"])])] == [1]
    sel2 = TrackSelector("largest")
    sel2.select([(a, faces["astronaut"])])
    assert [t.id for t, _ in sel2.select([(h, faces["hopper"])])] == [1]  # the chosen track ended


def test_tracks_all_and_reference(faces, refs) -> None:
    pairs = [(track(0, faces["astronaut"]), faces["astronaut"]), (track(1, faces["hopper"]), faces["hopper"])]
    assert TrackSelector("all").select(pairs) == pairs
    assert [t.source_index for t, _ in pairs] == [0, 0]
    sel = TrackSelector("reference", references=[refs["hopper"]])
    assert sel.needs_identity
    assert [t.id for t, _ in sel.select(pairs)] == [1]
    pairs[1][0].embedding = None  # not identified (yet): not swapped
    assert sel.select(pairs) == []


def test_tracks_many_by_order_of_appearance_and_kept(faces) -> None:
    # Hopper appears first although she is on the right; a third person gets nothing
    a, h = track(5, faces["astronaut"], first_seen=1.0), track(7, faces["hopper"], first_seen=0.5)
    c = track(9, faces["astronaut"], first_seen=2.0)
    sel = TrackSelector("many", sources=2)
    assert sel.needs_identity
    got = sel.select([(a, faces["astronaut"]), (c, faces["astronaut"]), (h, faces["hopper"])])
    assert [(t.id, t.source_index) for t, _ in got] == [(7, 0), (5, 1)]
    assert c.source_index == -1
    # the next frame, only the astronaut: she keeps source 1
    assert [(t.id, t.source_index) for t, _ in sel.select([(a, faces["astronaut"])])] == [(5, 1)]


def test_tracks_many_by_reference(faces, refs) -> None:
    a, h = track(0, faces["astronaut"]), track(1, faces["hopper"])
    sel = TrackSelector("many", references=[refs["hopper"], refs["astronaut"]], sources=2)
    got = sel.select([(a, faces["astronaut"]), (h, faces["hopper"])])
    assert sorted((t.id, t.source_index) for t, _ in got) == [(0, 1), (1, 0)]
    stranger = Track(id=2, box=faces["hopper"].box, first_seen=0.0, embedding=-refs["hopper"])
    assert sel.select([(stranger, faces["hopper"])]) == [] and stranger.source_index == -1


def test_others_leave_a_look_alike_unswapped(faces, refs) -> None:
    """A loose reference (threshold 10: every face "matches") takes both faces; naming the astronaut as a
    person not to swap leaves her out, as it does in ``many`` and over video tracks, while Hopper, nearer
    to the reference than to the astronaut, is still taken."""
    both = [faces["astronaut"], faces["hopper"]]
    loose = {"references": [refs["hopper"]], "threshold": 10.0}
    assert names(select_faces(both, "reference", **loose), faces) == [("hopper", 0), ("astronaut", 0)]
    got = select_faces(both, "reference", others=[refs["astronaut"]], **loose)
    assert names(got, faces) == [("hopper", 0)]
    assert match_reference(refs["astronaut"], [refs["hopper"]], 10.0, [refs["astronaut"]]) is None
    assert match_reference(refs["hopper"], [refs["hopper"]], 10.0, [refs["astronaut"]]) == 0
    got = select_faces(both, "many", references=[refs["hopper"]], threshold=10.0, others=[refs["astronaut"]])
    assert names(got, faces) == [("hopper", 0)]
    with pytest.raises(
        NoFaceError, match=r"^no face in the target matches the reference better than the other"
    ):
        select_faces([faces["astronaut"]], "reference", others=[refs["astronaut"]], **loose)
    a, h = track(0, faces["astronaut"]), track(1, faces["hopper"])
    sel = TrackSelector("reference", references=[refs["hopper"]], threshold=10.0, others=[refs["astronaut"]])
    assert [t.id for t, _ in sel.select([(a, faces["astronaut"]), (h, faces["hopper"])])] == [1]
