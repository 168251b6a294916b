"""Head pose and expression from the 3-D face mesh, using the project's canonical mesh.

The canonical mesh (``data/canonical_mesh.npz``) is the mean pose-normalised mediapipe mesh of LFW
faces, built by ``scripts/build_canonical_mesh.py``. Its axes are the image's: x right, y down, z away
from the camera; a frontal upright face has yaw = pitch = roll ≈ 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..face import Pose
from ..models import get_model
from .alignment import umeyama


@dataclass(frozen=True)
class PoseFit:
    """Similarity mapping canonical → observed: observed ≈ scale · R · canonical + t."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def to_canonical(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.translation) @ self.rotation / self.scale

    def from_canonical(self, pts: np.ndarray) -> np.ndarray:
        return self.scale * pts @ self.rotation.T + self.translation


def euler_from_rotation(r: np.ndarray) -> Pose:
    """Decompose R = Rz(roll)·Ry(θy)·Rx(θx) and express it in the :class:`Pose` sign convention."""
    theta_y = -np.arcsin(np.clip(r[2, 0], -1.0, 1.0))
    theta_x = np.arctan2(r[2, 1], r[2, 2])
    theta_z = np.arctan2(r[1, 0], r[0, 0])
    return Pose(
        yaw=float(-np.degrees(theta_y)), pitch=float(-np.degrees(theta_x)), roll=float(np.degrees(theta_z))
    )


# a triangle of the mesh is seen when the photo shows it at least this share of the area it has facing
# the camera (at the face's scale), not at all below this share: turned edge-on or away (a strong turn)
FACING = (0.15, 0.5)


def signed_areas(corners: np.ndarray) -> np.ndarray:
    """Signed areas of triangles given as an (N, 3, 2) array of x, y corners (positive: clockwise on
    screen, as the canonical mesh's triangles run seen from the front, y down)."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


class CanonicalMesh:
    """The canonical mesh, its rigid vertex set, triangulation and mirror map."""

    def __init__(self) -> None:
        with np.load(get_model("masquerade-canonical-mesh").path()) as z:
            self.vertices: np.ndarray = z["vertices"].astype(np.float64)
            self.rigid: np.ndarray = z["rigid"].astype(np.int64)
            self.triangles: np.ndarray = z["triangles"].astype(np.int64)
            self.mirror: np.ndarray = z["mirror"].astype(np.int64)

    @cached_property
    def inter_ocular(self) -> float:
        return float(np.linalg.norm(self.vertices[263] - self.vertices[33]))

    @cached_property
    def frontal_areas(self) -> np.ndarray:
        """Each triangle's area seen from the front (its x, y): what a photo facing the camera shows."""
        return np.clip(signed_areas(self.vertices[self.triangles][:, :, :2]), 0.0, None)

    def facing(self, mesh: np.ndarray, fit: PoseFit | None = None) -> np.ndarray:
        """Per triangle, 0..1: how far the photo of ``mesh`` shows it — its area in the photo over its
        frontal area at the face's fitted scale, ramped over :data:`FACING` (1: as well as a photo facing
        the camera; 0: turned edge-on or away, its texture not in the photo)."""
        fit = fit or self.fit(mesh)
        shown = signed_areas(mesh[self.triangles][:, :, :2]) / fit.scale**2
        ratio = shown / np.maximum(self.frontal_areas, 1e-12)
        lo, hi = FACING
        return np.clip((ratio - lo) / (hi - lo), 0.0, 1.0)

    def seen_share(self, mesh: np.ndarray, fit: PoseFit | None = None) -> float:
        """The share of the face (by frontal area) that the photo of ``mesh`` shows (:meth:`facing`):
        0.97 on average for faces turned less than 10°, 0.75 at 30-40° of yaw, 0.60-0.67 at 40-50°
        (``benchmarks/bench_facing.py`` on random LFW and CelebA faces)."""
        w = self.frontal_areas
        return float((w * self.facing(mesh, fit)).sum() / w.sum())

    def fit(self, mesh: np.ndarray) -> PoseFit:
        s, r, t = umeyama(self.vertices[self.rigid], mesh[self.rigid, :3])
        return PoseFit(scale=s, rotation=r, translation=t)

    def pose(self, mesh: np.ndarray) -> tuple[Pose, PoseFit]:
        fit = self.fit(mesh)
        return euler_from_rotation(fit.rotation), fit

    def expression(self, mesh: np.ndarray, fit: PoseFit | None = None) -> dict[str, float]:
        """Pose-free expression measures, each normalised by the inter-ocular distance."""
        fit = fit or self.fit(mesh)
        n = fit.to_canonical(mesh[:, :3])
        iod = float(np.linalg.norm(n[263] - n[33])) or 1.0

        def dist(a: int, b: int) -> float:
            return float(np.linalg.norm(n[a] - n[b]) / iod)

        mouth_mid_y = (n[13, 1] + n[14, 1]) / 2
        corners_y = (n[61, 1] + n[291, 1]) / 2
        return {
            "mouth_open": dist(13, 14),
            "mouth_width": dist(61, 291),
            "smile": float((mouth_mid_y - corners_y) / iod),
            "eye_open_left": dist(159, 145) / max(dist(33, 133), 1e-6),
            "eye_open_right": dist(386, 374) / max(dist(362, 263), 1e-6),
            "brow_raise_left": dist(105, 159),
            "brow_raise_right": dist(334, 386),
            "jaw_drop": dist(1, 152),
        }

    def normalised(self, mesh: np.ndarray) -> np.ndarray:
        """The mesh in the canonical frame (pose, scale and position removed)."""
        return self.fit(mesh).to_canonical(mesh[:, :3])
