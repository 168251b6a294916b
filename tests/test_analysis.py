"""Detection, landmarks, pose, expression and identity on real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import lfw_image, lfw_pairs, rotate

from masquerade import FaceAnalyzer, euclidean_distance
from masquerade.analysis.geometry import CanonicalMesh, euler_from_rotation
from masquerade.analysis.landmarks import DlibLandmarker
from masquerade.identity.encoder import SAME_PERSON_DISTANCE


def _one(analyzer: FaceAnalyzer, rgb: np.ndarray):
    faces = analyzer.get(rgb)
    assert len(faces) == 1, f"expected one face, found {len(faces)}"
    return faces[0]


def test_samples_have_one_face_each_in_the_right_place(analyzer, astronaut, hopper):
    a, g = _one(analyzer, astronaut), _one(analyzer, hopper)
    assert a.score > 0.8 and g.score > 0.8
    # the astronaut's face is around x 170-280, y 60-190 in the 512×512 photo
    assert 160 < a.center[0] < 290 and 80 < a.center[1] < 180
    assert 190 < g.center[0] < 330 and 160 < g.center[1] < 310
    assert a.mesh.shape == (478, 3) and a.landmarks_68.shape == (68, 2) and a.landmarks_5.shape == (5, 2)


def test_detects_two_faces_and_a_small_face(analyzer, pair_image, hopper):
    faces = analyzer.get(pair_image)
    assert len(faces) == 2
    assert sorted(f.center[0] < 550 for f in faces) == [False, True]
    canvas = np.full((720, 1280, 3), 120, np.uint8)
    small = cv2.resize(hopper[100:420, 150:400], (44, 56), interpolation=cv2.INTER_AREA)
    canvas[500:556, 1000:1044] = small
    canvas[100:420, 100:350] = hopper[100:420, 150:400]
    faces = analyzer.get(canvas, identity=False)
    assert len(faces) == 2, "the 44-px face must be found next to the large one"
    tiny = min(faces, key=lambda f: f.area)
    assert 990 < tiny.center[0] < 1054 and 490 < tiny.center[1] < 566


def test_five_points_are_ordered_and_match_the_68(analyzer, astronaut):
    f = _one(analyzer, astronaut)
    le, re, nose, ml, mr = f.landmarks_5
    assert le[0] < nose[0] < re[0] and ml[0] < mr[0]
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1])
    np.testing.assert_allclose(ml, f.landmarks_68[48], atol=0.01)


@pytest.mark.parametrize("name", ["astronaut", "hopper"])
def test_mesh_68_agrees_with_dlib_predictor(analyzer, name, astronaut, hopper):
    rgb = astronaut if name == "astronaut" else hopper
    f = _one(analyzer, rgb)
    d68 = DlibLandmarker().get(rgb, f.box)
    iod = np.linalg.norm(f.landmarks_5[1] - f.landmarks_5[0])
    inner = slice(17, 68)  # jaw definitions differ between the two models; compare the rest
    err = np.linalg.norm(f.landmarks_68[inner] - d68[inner], axis=1).mean() / iod
    assert err < 0.08, f"mean inner-landmark disagreement {err:.3f} of the inter-ocular distance"


def test_dlib_landmark_option(astronaut):
    with FaceAnalyzer(landmarks="dlib", identity=False) as fa:
        (f,) = fa.get(astronaut)
    assert f.landmark_model == "dlib" and f.mesh is None
    assert f.pose is not None and abs(f.pose.yaw) < 15


def test_pose_convention_on_synthetic_rotation():
    cm = CanonicalMesh()
    for yaw, pitch, roll in [(25, 0, 0), (0, 15, 0), (0, 0, -20), (-30, 10, 12)]:
        ry, rx, rz = np.radians([-yaw, -pitch, roll])
        r_y = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
        r_x = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
        r_z = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
        mesh = 80 * cm.vertices @ (r_z @ r_y @ r_x).T + [300, 200, 0]
        pose, _ = cm.pose(mesh)
        assert np.allclose(pose.as_array(), [yaw, pitch, roll], atol=1e-6)
        # the nose tip moves to the image's right for a positive yaw
        if yaw > 0:
            assert mesh[1, 0] > mesh[168, 0]
    assert euler_from_rotation(np.eye(3)).as_array().tolist() == [0, 0, 0]


def test_pose_follows_image_rotation_and_mirroring(analyzer, astronaut, hopper):
    for rgb in (astronaut, hopper):
        base = _one(analyzer, rgb).pose
        turned = _one(analyzer, rotate(rgb, 20)).pose
        assert turned.roll - base.roll == pytest.approx(20, abs=4)
        mirrored = _one(analyzer, np.ascontiguousarray(rgb[:, ::-1])).pose
        assert mirrored.roll == pytest.approx(-base.roll, abs=3)
        assert mirrored.yaw == pytest.approx(-base.yaw, abs=4)
        assert mirrored.pitch == pytest.approx(base.pitch, abs=3)


def test_expression_descriptor_tells_open_from_closed_mouth(analyzer, astronaut, hopper):
    smiling, closed = _one(analyzer, astronaut).expression, _one(analyzer, hopper).expression
    assert smiling["mouth_open"] > 0.08 > closed["mouth_open"]
    assert smiling["smile"] > closed["smile"]
    for e in (smiling, closed):
        assert 0.15 < e["eye_open_left"] < 0.6 and 0.15 < e["eye_open_right"] < 0.6


def test_a_face_turned_away_shows_less_of_itself(analyzer, astronaut):
    """The seen share of a face (by its triangles' frontal area) is near 1 for the frontal astronaut and
    falls as her mesh is turned about its vertical axis; turned either way alike; the far side goes."""
    cm = CanonicalMesh()
    mesh = _one(analyzer, astronaut).mesh.astype(np.float64)
    centre = mesh[:468].mean(axis=0)

    def turned(degrees: float) -> np.ndarray:
        a = np.radians(degrees)
        r = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        return (mesh - centre) @ r.T + centre

    shares = [cm.seen_share(turned(d)) for d in (0, 20, 40, 60)]
    assert shares[0] > 0.95
    assert shares[0] > shares[1] > shares[2] > shares[3] and shares[2] < 0.8 and shares[3] < 0.6
    assert abs(cm.seen_share(turned(-40)) - shares[2]) < 0.05
    facing = cm.facing(turned(60))
    x = mesh[cm.triangles][:, :, 0].mean(axis=1)
    far = facing[x < np.percentile(x, 25)].mean(), facing[x > np.percentile(x, 75)].mean()
    assert min(far) < 0.2 and max(far) > 0.8  # one side turned away, the other towards the camera


def test_identity_separates_the_two_samples(analyzer, astronaut, hopper):
    a, g = _one(analyzer, astronaut), _one(analyzer, hopper)
    assert a.embedding.shape == (128,)
    assert euclidean_distance(a.embedding, g.embedding) > SAME_PERSON_DISTANCE
    mirrored = _one(analyzer, np.ascontiguousarray(astronaut[:, ::-1]))
    assert euclidean_distance(a.embedding, mirrored.embedding) < 0.35


@pytest.mark.slow  # LFW
def test_lfw_detection_and_verification(analyzer, lfw):
    """Official pairs.txt (first 50 matched, first 50 mismatched): accuracy at dlib's 0.6 threshold."""
    correct = total = 0
    for matched in (True, False):
        for n1, i1, n2, i2 in lfw_pairs(lfw, matched, 50):
            f1 = analyzer.get(lfw_image(lfw, n1, i1))
            f2 = analyzer.get(lfw_image(lfw, n2, i2))
            assert f1 and f2, f"no face detected in an LFW photo of {n1} or {n2}"
            # LFW photos are centred on the subject: take the face nearest the centre
            e1 = min(f1, key=lambda f: np.linalg.norm(f.center - 125)).embedding
            e2 = min(f2, key=lambda f: np.linalg.norm(f.center - 125)).embedding
            same = euclidean_distance(e1, e2) < SAME_PERSON_DISTANCE
            correct += same == matched
            total += 1
    assert correct / total >= 0.95, f"verification accuracy {correct / total:.2%}"


@pytest.mark.slow  # LFW
@pytest.mark.parametrize(("name", "n", "sign"), [("Allan_Houston", 1, -1), ("George_Clooney", 2, +1)])
def test_profileish_faces_are_found_with_the_right_yaw(analyzer, lfw, name, n, sign):
    """Faces turned ~50° (nose towards the image's left: yaw < 0; right: yaw > 0), and their mirrors."""
    rgb = lfw_image(lfw, name, n)
    for flip in (1, -1):
        img = np.ascontiguousarray(rgb[:, ::flip])
        faces = analyzer.get(img, identity=False)
        face = min(faces, key=lambda f: np.linalg.norm(f.center - 125))
        assert sign * flip * face.pose.yaw > 30, f"{name}: yaw {face.pose.yaw:.1f}"


def test_landmark_array_reads_mediapipe_lists_exactly() -> None:
    """The serialised fast path and the field-by-field path agree, and unusual lists take the latter."""
    from mediapipe.framework.formats import landmark_pb2

    from masquerade._native import mediapipe_solutions
    from masquerade.analysis.landmarks import landmark_array

    mediapipe_solutions()
    rng = np.random.default_rng(0)
    xyz = rng.uniform(-1, 2, (478, 3)).astype(np.float32)
    plain = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in xyz:
        plain.landmark.add(x=x, y=y, z=z)
    assert np.array_equal(landmark_array(plain), xyz.astype(np.float64))
    odd = landmark_pb2.NormalizedLandmarkList()
    odd.CopyFrom(plain)
    odd.landmark[7].visibility = 0.5  # an extra field: the record layout no longer holds
    odd.landmark[9].x = 0.0  # a default value is not serialised at all
    want = xyz.astype(np.float64)
    want[9, 0] = 0.0
    assert np.array_equal(landmark_array(odd), want)
    assert landmark_array(landmark_pb2.NormalizedLandmarkList()).shape == (0,)
