"""mediapipe's legacy solutions run through :func:`masquerade._native.run_solution` (without the namedtuple
class ``SolutionBase.process`` builds per call) give what their own ``process`` gives."""

from __future__ import annotations

import numpy as np

from masquerade._native import mediapipe_solutions, run_solution
from masquerade.analysis.landmarks import landmark_array


def test_run_solution_equals_process_for_the_face_mesh_hands_and_detector(hopper: np.ndarray) -> None:
    s = mediapipe_solutions()
    crop = np.ascontiguousarray(hopper[40:440, 100:500])
    with s.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as mesh:
        theirs = mesh.process(crop).multi_face_landmarks
        ours = run_solution(mesh, crop, serialised=("multi_face_landmarks",)).multi_face_landmarks
        assert len(theirs) == len(ours) == 1 and isinstance(ours[0], bytes)
        expected = landmark_array(theirs[0])
        assert expected.shape == (478, 3) and np.array_equal(landmark_array(ours[0]), expected)
        nothing = run_solution(mesh, np.zeros((64, 64, 3), np.uint8), serialised=("multi_face_landmarks",))
        assert nothing.multi_face_landmarks is None
    with s.face_detection.FaceDetection(model_selection=1) as det:
        theirs = det.process(hopper).detections
        ours = run_solution(det, hopper).detections
        assert len(theirs) == len(ours) >= 1 and ours[0] == theirs[0]
    with s.hands.Hands(static_image_mode=True, model_complexity=0) as hands:
        res = run_solution(hands, hopper, streams=("multi_hand_landmarks",))
        assert res.multi_hand_landmarks is None and res.multi_handedness is None


def test_run_solution_falls_back_to_process_on_another_mediapipe() -> None:
    """A solution without the private parts run_solution relies on is run through its own process()."""
    from collections import namedtuple

    class Other:
        def process(self, image: np.ndarray):
            return namedtuple("SolutionOutputs", ["detections"])(detections=[image.shape])

    assert run_solution(Other(), np.zeros((8, 8, 3), np.uint8)).detections == [(8, 8, 3)]
