"""The ``Face`` record that flows through the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Head rotation in degrees.

    yaw > 0: the face turns towards the image's right; pitch > 0: the face looks up;
    roll > 0: the head tilts clockwise in the image.
    """

    yaw: float
    pitch: float
    roll: float

    def as_array(self) -> np.ndarray:
        return np.array([self.yaw, self.pitch, self.roll], dtype=np.float64)


@dataclass(frozen=True)
class Face:
    """One detected face.

    Coordinates are pixels of the analysed image (x right, y down). ``mesh`` holds mediapipe's 478
    points with a depth column in pixels (smaller z is nearer the camera); ``landmarks_68`` follows the
    iBUG 300-W layout; ``landmarks_5`` is (eye on image-left, eye on image-right, nose tip, mouth corner
    image-left, mouth corner image-right), the insightface/ArcFace order.
    """

    box: np.ndarray
    score: float
    landmarks_68: np.ndarray
    landmarks_5: np.ndarray
    mesh: np.ndarray | None = None
    pose: Pose | None = None
    expression: dict[str, float] = field(default_factory=dict)
    embedding: np.ndarray | None = None
    landmark_model: str = "mediapipe"

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return float(max(0.0, x2 - x1) * max(0.0, y2 - y1))

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    def to_dict(self, with_mesh: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "landmark_model": self.landmark_model,
            "landmarks_5": np.round(self.landmarks_5, 1).tolist(),
            "landmarks_68": np.round(self.landmarks_68, 1).tolist(),
        }
        if self.pose is not None:
            d["pose"] = {k: round(float(v), 2) for k, v in vars(self.pose).items()}
        if self.expression:
            d["expression"] = {k: round(float(v), 4) for k, v in self.expression.items()}
        if self.embedding is not None:
            d["embedding"] = np.round(self.embedding, 5).tolist()
        if with_mesh and self.mesh is not None:
            d["mesh"] = np.round(self.mesh, 1).tolist()
        return d
