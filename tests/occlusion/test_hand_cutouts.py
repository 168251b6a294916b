"""Real hands as synthetic occluders (masquerade.occlusion.hand_cutouts, the segmenter's ``--occluders
hands``): a hand cut out of a real CelebA photo (the hand over a cheek of ``celeba_occlusion_v1``)
covers the hand and not the face behind it; a cut-out pasted on another face lands in front of it at a
hand's size, is labelled exactly where it shows, and takes the face's tone; the kind needs a bank."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from occlusion_fixtures import real_occluder

from masquerade import FaceAnalyzer
from masquerade.analysis.hands import HandDetector
from masquerade.analysis.regions import FACE_OVAL, idx
from masquerade.errors import InputError
from masquerade.occlusion.hand_cutouts import (
    CUT_SIZE,
    HandCutouts,
    cut_out_hand,
    cutout_matrix,
    hand_in_front,
)
from masquerade.occlusion.synthetic import REAL_HAND, face_frame, make_occluder

HAND_PHOTO = "7353/039476.jpg"  # a hand over the cheek and chin (celeba_occlusion_v1)


@pytest.fixture(scope="module")
def cut(celeba: Path):
    rgb, face, truth = real_occluder(celeba, HAND_PHOTO)
    with HandDetector(max_hands=2) as detector:
        hands = detector.get(rgb)
    iod = float(np.linalg.norm(face.landmarks_5[1] - face.landmarks_5[0]))
    near = [h for h in hands if hand_in_front(h, iod)]
    assert len(near) == 1
    found = cut_out_hand(rgb, near[0])
    assert found is not None and len(found) == 1
    return rgb, face, truth, near[0], found


@pytest.mark.slow
def test_a_cut_out_hand_is_the_hand_not_the_face_behind_it(cut) -> None:
    rgb, face, truth, points, found = cut
    assert found.rgba.shape == (1, CUT_SIZE, CUT_SIZE, 4) and found.landmarks.shape == (1, 21, 2)
    # the cut-out's alpha, mapped back onto the photo
    m = cutout_matrix(points)
    hand = cv2.warpAffine(found.rgba[0, :, :, 3], cv2.invertAffineTransform(m), rgb.shape[1::-1]) > 127
    oval = np.zeros(rgb.shape[:2], np.uint8)
    assert face.mesh is not None
    cv2.fillPoly(oval, [np.round(face.mesh[idx(FACE_OVAL), :2]).astype(np.int32)], 1)
    bare = (oval > 0) & ~cv2.dilate(truth.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    # most of the hand-drawn hand over the face, almost none of the bare face beside it (same skin tone)
    assert (hand & truth).sum() > 0.6 * truth.sum(), (hand & truth).sum() / truth.sum()
    assert (hand & bare).sum() < 0.01 * bare.sum(), (hand & bare).sum() / bare.sum()
    # the landmarks moved with the crop
    assert np.allclose(found.landmarks[0], points @ m[:, :2].T + m[:, 2], atol=1e-3)


@pytest.mark.slow
def test_a_pasted_real_hand_is_in_front_of_the_face_at_a_hands_size(cut, astronaut: np.ndarray) -> None:
    _, _, _, _, found = cut
    with FaceAnalyzer(identity=False) as fa:
        face = fa.get(astronaut)[0]
    f = face_frame(face.landmarks_68)
    box = face.box
    sizes, near = [], 0
    for seed in range(12):
        args = (REAL_HAND, seed, face.landmarks_68, astronaut.shape)
        layer = make_occluder(*args, image=astronaut, hands=found)
        assert layer.kind == REAL_HAND and layer.rgb.shape == astronaut.shape
        again = make_occluder(*args, image=astronaut, hands=found)
        assert np.array_equal(layer.alpha, again.alpha)  # deterministic in its seed
        sizes.append(layer.mask.sum() / f.iod**2)
        ys, xs = np.nonzero(layer.mask)
        cx, cy = xs.mean(), ys.mean()
        near += int(box[0] - f.iod < cx < box[2] + f.iod and box[1] - f.iod < cy < box[3] + f.iod)
        # its colour is the cut-out's hand moved towards the face's tone, not the photo's
        hand_mean = layer.rgb[layer.mask].astype(float).mean(0)
        cut_mean = found.rgba[0, :, :, :3][found.rgba[0, :, :, 3] > 127].astype(float).mean(0)
        assert np.abs(hand_mean - cut_mean).max() < 80
    assert near == 12
    assert 0.4 < np.median(sizes) < 6.0, sizes  # a palm and fingers, against the eyes' distance squared


def test_the_real_hand_kind_needs_a_bank(astronaut: np.ndarray) -> None:
    lm = np.zeros((68, 2)) + np.arange(68)[:, None]
    with pytest.raises(InputError, match="needs hand cut-outs"):
        make_occluder(REAL_HAND, 0, lm, astronaut.shape)
    with pytest.raises(InputError, match="needs hand cut-outs"):
        make_occluder(REAL_HAND, 0, lm, astronaut.shape, hands=HandCutouts.empty())
