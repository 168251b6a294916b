"""Annotated previews of analysed faces."""

from __future__ import annotations

import cv2
import numpy as np

from ..face import Face


def annotate(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """Boxes, 68 landmarks (green), 5 points (red), mesh (faint) and pose text on a copy of ``rgb``."""
    out = rgb.copy()
    scale = max(1, round(max(rgb.shape[:2]) / 600))
    for i, f in enumerate(faces):
        x1, y1, x2, y2 = (int(round(v)) for v in f.box)
        if f.mesh is not None:
            for x, y in f.mesh[:468, :2].astype(int):
                cv2.circle(out, (int(x), int(y)), 0, (200, 200, 255), -1)
        cv2.rectangle(out, (x1, y1), (x2, y2), (255, 200, 0), scale)
        for x, y in f.landmarks_68:
            cv2.circle(out, (int(round(x)), int(round(y))), scale, (0, 255, 0), -1)
        for x, y in f.landmarks_5:
            cv2.circle(out, (int(round(x)), int(round(y))), scale + 1, (255, 0, 0), -1)
        label = f"#{i} {f.score:.2f}"
        if f.pose is not None:
            label += f" y{f.pose.yaw:+.0f} p{f.pose.pitch:+.0f} r{f.pose.roll:+.0f}"
        cv2.putText(
            out, label, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * scale, (255, 255, 0), scale
        )
    return out
