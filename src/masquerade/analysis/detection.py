"""Face detection with mediapipe's BlazeFace models (shipped in the mediapipe wheel).

The full-range model runs on the whole image; on large images it also runs on overlapping tiles so
that small faces (down to ~40 px) are found. Boxes from all passes are merged by non-maximum
suppression.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .._native import mediapipe_solutions, quiet_stderr, run_solution

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # x1, y1, x2, y2 in pixels
    score: float
    keypoints: np.ndarray  # 6x2: eye (image-left), eye (image-right), nose, mouth, ear, ear


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / ua) if ua > 0 else 0.0


def nms(dets: list[Detection], thresh: float = 0.35) -> list[Detection]:
    out: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, o.box) < thresh and not _contains(o.box, d.box) for o in out):
            out.append(d)
    return out


def _contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    """True when ``inner`` lies mostly inside ``outer`` (a part-face duplicate from a tile)."""
    x1, y1 = max(outer[0], inner[0]), max(outer[1], inner[1])
    x2, y2 = min(outer[2], inner[2]), min(outer[3], inner[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return area > 0 and inter / area > 0.7


class FaceDetector:
    """BlazeFace detector. Call :meth:`detect` with an RGB uint8 image; close() frees the graphs."""

    def __init__(self, min_score: float = 0.5, tile: bool = True, tile_size: int = 640) -> None:
        solutions = mediapipe_solutions()
        self.min_score = min_score
        self.tile = tile
        self.tile_size = tile_size
        fd = solutions.face_detection
        with quiet_stderr():
            self._full = fd.FaceDetection(model_selection=1, min_detection_confidence=min_score)
            self._short = fd.FaceDetection(model_selection=0, min_detection_confidence=min_score)
            warm = np.zeros((64, 64, 3), np.uint8)
            self._full.process(warm)
            self._short.process(warm)

    def close(self) -> None:
        self._full.close()
        self._short.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, model: object, rgb: np.ndarray, ox: float, oy: float) -> list[Detection]:
        h, w = rgb.shape[:2]
        res = run_solution(model, np.ascontiguousarray(rgb))
        out: list[Detection] = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            x1, y1 = bb.xmin * w + ox, bb.ymin * h + oy
            box = np.array([x1, y1, x1 + bb.width * w, y1 + bb.height * h], dtype=np.float64)
            kps = np.array(
                [[k.x * w + ox, k.y * h + oy] for k in d.location_data.relative_keypoints], dtype=np.float64
            )
            # mediapipe's "right eye" (subject's right) is first; it lies on the image's left.
            out.append(Detection(box=box, score=float(d.score[0]), keypoints=kps))
        return out

    def detect(self, rgb: np.ndarray, small_faces: bool = True) -> list[Detection]:
        """Detect faces. With ``small_faces=False`` the tiled pass is skipped when the whole-image pass
        already found a face (enough when only the largest face is wanted: tiles add small faces)."""
        h, w = rgb.shape[:2]
        dets = self._run(self._full, rgb, 0, 0)
        if not dets or min(h, w) <= 400:
            dets += self._run(self._short, rgb, 0, 0)
        want_tiles = small_faces or not dets
        if self.tile and want_tiles and max(h, w) > self.tile_size * 1.25:
            t = self.tile_size
            step = int(t * 0.75)
            for y in range(0, max(1, h - t // 4), step):
                for x in range(0, max(1, w - t // 4), step):
                    crop = rgb[y : y + t, x : x + t]
                    if crop.shape[0] < 64 or crop.shape[1] < 64:
                        continue
                    dets += [
                        d
                        for d in self._run(self._full, crop, x, y)
                        if not _touches_edge(d.box, x, y, crop.shape, rgb.shape)
                    ]
        dets = [d for d in dets if (d.box[2] - d.box[0]) >= 12 and (d.box[3] - d.box[1]) >= 12]
        merged = nms(dets)
        log.debug("detected %d faces (%d raw)", len(merged), len(dets))
        return merged


def _touches_edge(
    box: np.ndarray, x: int, y: int, crop_shape: tuple[int, ...], image_shape: tuple[int, ...]
) -> bool:
    """A box cut by a tile border that is not also an image border is a partial face."""
    ch, cw = crop_shape[:2]
    ih, iw = image_shape[:2]
    m = 2.0
    return bool(
        (x > 0 and box[0] - x < m)
        or (y > 0 and box[1] - y < m)
        or (x + cw < iw and x + cw - box[2] < m)
        or (y + ch < ih and y + ch - box[3] < m)
    )
