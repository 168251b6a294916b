"""Face analysis: detection → landmarks → pose/expression → (optional) identity, as ``Face`` records.

Usage mirrors insightface's small API::

    analyzer = FaceAnalyzer()
    faces = analyzer.get(rgb)          # list[Face], largest first
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Literal

import cv2
import numpy as np

from ..face import Face
from ..identity.encoder import IdentityEncoder
from .detection import FaceDetector
from .geometry import CanonicalMesh, euler_from_rotation
from .landmarks import MESH_TO_68, DlibLandmarker, MeshLandmarker, five_from_68, five_from_mesh

log = logging.getLogger(__name__)

LandmarkModel = Literal["mediapipe", "dlib"]


@dataclass(frozen=True)
class AnalyzerOptions:
    landmarks: LandmarkModel = "mediapipe"
    min_score: float = 0.5
    tile: bool = True
    identity: bool = True
    max_faces: int = 64


class FaceAnalyzer:
    """Holds the models for one analysis configuration. Not thread-safe; make one per thread."""

    def __init__(self, options: AnalyzerOptions | None = None, **kwargs: object) -> None:
        self.options = replace(options or AnalyzerOptions(), **kwargs)  # type: ignore[arg-type]
        self._detector: FaceDetector | None = None
        self._mesh: MeshLandmarker | None = None
        self._dlib68: DlibLandmarker | None = None
        self._identity: IdentityEncoder | None = None
        self.canonical = CanonicalMesh()

    def prepare(self) -> FaceAnalyzer:
        """Load every model now (otherwise each loads on first use)."""
        self.detector  # noqa: B018
        self._landmarker()
        if self.options.identity:
            self.identity  # noqa: B018
        return self

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector(min_score=self.options.min_score, tile=self.options.tile)
        return self._detector

    @property
    def identity(self) -> IdentityEncoder:
        if self._identity is None:
            self._identity = IdentityEncoder()
        return self._identity

    @property
    def mesh_landmarker(self) -> MeshLandmarker:
        """The mediapipe mesh model (loaded on first use), whatever ``options.landmarks`` says."""
        if self._mesh is None:
            self._mesh = MeshLandmarker()
        return self._mesh

    def _landmarker(self) -> MeshLandmarker | DlibLandmarker:
        if self.options.landmarks == "dlib":
            if self._dlib68 is None:
                self._dlib68 = DlibLandmarker()
            return self._dlib68
        return self.mesh_landmarker

    def close(self) -> None:
        for m in (self._detector, self._mesh, self._dlib68, self._identity):
            if m is not None:
                m.close()
        self._detector = self._mesh = self._dlib68 = self._identity = None

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, rgb: np.ndarray, identity: bool | None = None, small_faces: bool = True) -> list[Face]:
        """Analyse an RGB uint8 image; faces are returned largest first.

        ``small_faces=False`` lets the detector skip its tiled pass once it has a face (see
        :meth:`FaceDetector.detect`); use it when only the largest face matters.
        """
        want_id = self.options.identity if identity is None else identity
        faces: list[Face] = []
        for det in self.detector.detect(rgb, small_faces=small_faces)[: self.options.max_faces]:
            face = self.analyze_box(rgb, det.box, det.score)
            if face is None:
                log.info("no landmarks for the face at %s; skipped", np.round(det.box).tolist())
                continue
            if want_id:
                face = self.embed(rgb, face)
            faces.append(face)
        faces.sort(key=lambda f: -f.area)
        return faces

    def analyze_box(self, rgb: np.ndarray, box: np.ndarray, score: float = 1.0) -> Face | None:
        lm = self._landmarker()
        if isinstance(lm, MeshLandmarker):
            mesh = lm.get(rgb, box)
            if mesh is None:
                return None
            return self.face_from_mesh(mesh, box, score)
        lm68 = lm.get(rgb, box)
        return Face(
            box=np.asarray(box, np.float64), score=score, landmarks_68=lm68, landmarks_5=five_from_68(lm68),
            pose=self.pose_from_68(lm68, rgb.shape), landmark_model="dlib",
        )  # fmt: skip

    def face_from_mesh(self, mesh: np.ndarray, box: np.ndarray, score: float) -> Face:
        pose, fit = self.canonical.pose(mesh)
        lm68 = mesh[list(MESH_TO_68), :2].copy()
        x1, y1 = mesh[:468, :2].min(0)
        x2, y2 = mesh[:468, :2].max(0)
        return Face(
            box=np.array([x1, y1, x2, y2]), score=score, landmarks_68=lm68, landmarks_5=five_from_mesh(mesh),
            mesh=mesh, pose=pose, expression=self.canonical.expression(mesh, fit), landmark_model="mediapipe",
        )  # fmt: skip

    def pose_from_68(self, lm68: np.ndarray, shape: tuple[int, ...]):
        """Pose from 2-D points by PnP against the canonical mesh (inner 51 points; jaw excluded)."""
        idx = list(range(17, 68))
        obj = self.canonical.vertices[[MESH_TO_68[i] for i in idx]].astype(np.float64)
        h, w = shape[:2]
        f = float(max(h, w))
        cam = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)
        ok, rvec, _ = cv2.solvePnP(obj, lm68[idx].astype(np.float64), cam, None, flags=cv2.SOLVEPNP_EPNP)
        if not ok:
            return None
        r, _ = cv2.Rodrigues(rvec)
        return euler_from_rotation(r)

    def embed(self, rgb: np.ndarray, face: Face) -> Face:
        return replace(face, embedding=self.identity.embed(rgb, face.landmarks_68))
