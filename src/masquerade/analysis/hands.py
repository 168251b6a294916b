"""Hand detection with mediapipe's hand landmarker (legacy ``hands`` solution, in the mediapipe wheel):
each hand as its 21 landmarks in image pixels."""

from __future__ import annotations

import numpy as np

from .._native import mediapipe_solutions, quiet_stderr, run_solution


class HandDetector:
    """mediapipe Hands on still images. Call :meth:`get` with an RGB uint8 image; ``close()`` frees it."""

    def __init__(self, max_hands: int = 4, min_score: float = 0.5, lite: bool = False) -> None:
        """``lite``: mediapipe's smaller hand-landmark model (``model_complexity=0``; a third less time)."""
        solutions = mediapipe_solutions()
        with quiet_stderr():  # its graph logs from its own threads while it starts: wait for that here
            self._hands = solutions.hands.Hands(
                static_image_mode=True, max_num_hands=max_hands, min_detection_confidence=min_score,
                model_complexity=0 if lite else 1,
            )  # fmt: skip
            self._hands.process(np.zeros((32, 32, 3), np.uint8))

    def get(self, rgb: np.ndarray) -> list[np.ndarray]:
        """The hands found, each a 21×2 float array of pixel coordinates."""
        h, w = rgb.shape[:2]
        res = run_solution(self._hands, np.ascontiguousarray(rgb), streams=("multi_hand_landmarks",))
        return [
            np.array([[p.x * w, p.y * h] for p in hand.landmark], np.float64)
            for hand in (res.multi_hand_landmarks or [])
        ]

    def close(self) -> None:
        self._hands.close()

    def __enter__(self) -> HandDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
