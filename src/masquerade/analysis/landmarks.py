"""Dense and sparse facial landmarks.

* :class:`MeshLandmarker` runs mediapipe's face mesh (478 points with iris) on a square crop around
  each detected face, so faces of any size in any image get a full mesh.
* :class:`DlibLandmarker` runs dlib's 68-point predictor (face-recognition-models) as an alternative.
* :data:`MESH_TO_68` maps mesh vertices to the iBUG 68-point layout; :func:`five_from_68` gives the
  ArcFace 5-point set.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from .._native import mediapipe_solutions, quiet_stderr, run_solution
from ..models import get_model

log = logging.getLogger(__name__)

# mediapipe mesh vertex for each of the iBUG 300-W 68 points (jaw 0-16, brows 17-26, nose 27-35,
# eyes 36-47, mouth 48-67). Widely used correspondence; the jaw points follow the mesh silhouette.
MESH_TO_68: tuple[int, ...] = (
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    168, 197, 5, 4, 75, 97, 2, 326, 305,
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    78, 82, 13, 312, 308, 317, 14, 87,
)  # fmt: skip

MESH_POINTS = 478


def five_from_68(lm68: np.ndarray) -> np.ndarray:
    """ArcFace order: eye centre (image-left), eye centre (image-right), nose tip, mouth corners."""
    return np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0), lm68[30], lm68[48], lm68[54]]).astype(
        np.float64
    )


def five_from_mesh(mesh: np.ndarray) -> np.ndarray:
    """5 points from the mesh, using the iris centres for the eyes when present."""
    lm68 = mesh[list(MESH_TO_68), :2]
    five = five_from_68(lm68)
    if mesh.shape[0] >= 478:
        five[0] = mesh[468, :2]
        five[1] = mesh[473, :2]
    return five


def square_crop_box(box: np.ndarray, scale: float, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Square (x, y, side) around a box centre, side = scale × the box's larger side."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = int(round(max(box[2] - box[0], box[3] - box[1]) * scale))
    side = max(side, 16)
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def crop_padded(rgb: np.ndarray, x: int, y: int, side: int) -> np.ndarray:
    """Square crop that may extend past the image, padded by edge replication."""
    h, w = rgb.shape[:2]
    pad_l, pad_t = max(0, -x), max(0, -y)
    pad_r, pad_b = max(0, x + side - w), max(0, y + side - h)
    crop = rgb[max(0, y) : min(h, y + side), max(0, x) : min(w, x + side)]
    if pad_l or pad_t or pad_r or pad_b:
        crop = cv2.copyMakeBorder(crop, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    return crop


_FACES = ("multi_face_landmarks",)  # the face mesh's output stream


class MeshLandmarker:
    """mediapipe face mesh (478 points) on a crop around a face box.

    ``tracking=True`` runs mediapipe in video mode: after the first frame it places its region of
    interest from the previous frame's landmarks instead of re-running its face detector on the crop
    (≈ 40 % less time per frame). Such an instance holds state, so it must follow one face through
    consecutive frames; it tries only the first crop scale (callers fall back to a static instance).
    """

    def __init__(self, crop_scale: float = 1.7, crop_size: int = 256, tracking: bool = False) -> None:
        solutions = mediapipe_solutions()
        self.crop_scale = crop_scale
        self.crop_size = crop_size
        self.tracking = tracking
        self._first = True
        with quiet_stderr():
            self._mesh = solutions.face_mesh.FaceMesh(
                static_image_mode=not tracking,
                max_num_faces=1,
                refine_landmarks=True,
                min_detection_confidence=0.3,
            )
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))

    def close(self) -> None:
        self._mesh.close()

    def get(self, rgb: np.ndarray, box: np.ndarray, thorough: bool = True) -> np.ndarray | None:
        """Return a (478, 3) mesh in image pixels (z in pixels, smaller is nearer), or None.
        ``thorough=False``: one crop only (a quick look where a face was lost)."""
        x1, y1, x2, y2 = box
        scales: tuple[float, ...] = (self.crop_scale,)
        if not self.tracking and thorough:
            scales += (self.crop_scale * 0.75, self.crop_scale * 1.4)
        for scale in scales:
            x, y, side = square_crop_box(box, scale, rgb.shape)
            crop = crop_padded(rgb, x, y, side)
            size = self.crop_size
            interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
            crop = cv2.resize(crop, (size, size), interpolation=interp)
            if self._first:
                with quiet_stderr():  # mediapipe logs a projection warning on its first face
                    res = run_solution(self._mesh, crop, serialised=_FACES)
                self._first = False
            else:
                res = run_solution(self._mesh, crop, serialised=_FACES)
            if not res.multi_face_landmarks:
                continue
            pts = landmark_array(res.multi_face_landmarks[0]) * side
            pts[:, 0] += x
            pts[:, 1] += y
            nose = pts[1]
            # in a crowd the crop can hold a neighbour's face too: keep only the face that was asked for
            if x1 <= nose[0] <= x2 and y1 <= nose[1] <= y2:
                return pts
        return None


# a NormalizedLandmarkList as mediapipe's face mesh serialises it: per landmark, field 1 (15 bytes)
# holding x, y and z as fixed32 fields 1, 2 and 3
_LANDMARK_FIELDS = [("key", "u1"), ("size", "u1"), ("kx", "u1"), ("x", "<f4"), ("ky", "u1"), ("y", "<f4")]
_LANDMARK_RECORD = np.dtype([*_LANDMARK_FIELDS, ("kz", "u1"), ("z", "<f4")])


def landmark_array(landmarks: Any) -> np.ndarray:
    """(N, 3) float64 x, y, z of a mediapipe ``NormalizedLandmarkList`` (the message, or its serialised
    bytes): read from the serialised bytes in one step (20× faster than a Python loop over 478 messages)
    when every landmark has exactly x, y and z, as the face mesh writes them; otherwise field by field."""
    data = landmarks if isinstance(landmarks, bytes) else landmarks.SerializeToString()
    if data and len(data) % _LANDMARK_RECORD.itemsize == 0:
        rec = np.frombuffer(data, _LANDMARK_RECORD)
        keys_ok = (rec["key"] == 0x0A) & (rec["size"] == 15) & (rec["kx"] == 0x0D)
        if (keys_ok & (rec["ky"] == 0x15) & (rec["kz"] == 0x1D)).all():
            return np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float64)
    if isinstance(landmarks, bytes):
        from mediapipe.framework.formats import landmark_pb2

        landmarks = landmark_pb2.NormalizedLandmarkList.FromString(data)
    return np.array([[p.x, p.y, p.z] for p in landmarks.landmark], dtype=np.float64)


class DlibLandmarker:
    """dlib's 68-point shape predictor (2-D only)."""

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._pred = dlib.shape_predictor(str(get_model("dlib-68").path()))

    def close(self) -> None:
        pass

    def get(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
        # dlib's detector boxes are tighter and lower than BlazeFace's; shift to match its training.
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        rect = self._dlib.rectangle(
            int(x1 + 0.05 * w), int(y1 + 0.12 * h), int(x2 - 0.05 * w), int(y2 + 0.05 * h)
        )
        shape = self._pred(rgb, rect)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
