"""The default, training-free, 3-D-aware swapper.

1. Both faces' 478-point meshes are brought into the canonical frame (pose, scale and position
   removed by a similarity fit on rigid vertices).
2. The result shape starts from the *source's* normalised mesh (its identity geometry: face outline,
   proportions, nose, eye spacing). The *target's* expression is transferred region by region: lids
   and brows follow the target relative to each eye's corners, the lips follow the target relative to
   the upper-lip centre (scaled by the mouth-width ratio), and the jaw follows the lower lip.
3. The result is re-posed with the target's fitted rotation, scale and translation.
4. The source texture is warped onto that geometry triangle by triangle (a dense piecewise-affine
   map, rasterised far-to-near so self-occlusion is handled), producing a patch over the target.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import cv2
import numpy as np

from ..analysis.alignment import umeyama
from ..analysis.geometry import CanonicalMesh
from ..analysis.regions import (
    BROW_IMAGE_LEFT,
    BROW_IMAGE_RIGHT,
    EYE_IMAGE_LEFT,
    EYE_IMAGE_RIGHT,
    FACE_OVAL,
    INNER_MOUTH,
    IRIS_IMAGE_LEFT,
    IRIS_IMAGE_RIGHT,
    LIPS,
    idx,
)
from ..errors import InputError, SkipFace
from ..face import Face
from .base import SwapPatch, SwapperInfo, SwapperOption
from .relight import (
    VIDEO_SMOOTHING,
    Lighting,
    face_lighting,
    ratio_canvas,
    ratio_image,
    skin_vertices,
    vertex_normals,
    vertex_ratio,
)

GAZES = ("target", "source")  # Mesh3DOptions.gaze
FILLS = ("mirror", "target")  # Mesh3DOptions.fill
NARROW_EYES = ("target", "stretch")  # Mesh3DOptions.narrow_eyes


@dataclass(frozen=True)
class Mesh3DOptions:
    shape_strength: float = 1.0  # 0: target geometry, 1: full source identity geometry
    expression_strength: float = 1.0  # 0: source expression, 1: target expression
    brow_strength: float = 0.7  # how far the source's brow shape is taken, 0 to 1
    map_resolution: int = 256  # largest side (px) at which the warp map is computed before upsampling
    gaze: str = "target"  # target: the irises move to where the target looks; source: as in the source
    # where the source's face is hidden (--occlusion on): mirror: its other side where its pose allows,
    # else the target's own face; target: always the target's own face
    fill: str = "mirror"
    # where an eye of the source is far narrower than the target's (Mesh3DSwapper.narrow_eyes): target:
    # the target's own eye shows there; stretch: the source's is stretched open
    narrow_eyes: str = "target"
    # how much of the source's own light is replaced by the target's (relight.py), 0 to 1
    relight: float = 0.5
    # options a subclass lets be None (decided elsewhere, e.g. by a model; see refined.RefinedOptions)
    _UNSET_ALLOWED: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in ("shape_strength", "expression_strength", "brow_strength", "relight"):
            if getattr(self, name) is None:
                if name in self._UNSET_ALLOWED:
                    continue
                raise InputError(f"{name.replace('_', ' ')} must be 0 to 1, not unset")
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name.replace('_', ' ')} must be 0 to 1, got {value:g}")
        if not 32 <= int(self.map_resolution) <= 4096:
            raise InputError(f"map resolution must be 32 to 4096 px, got {self.map_resolution}")
        if self.gaze not in GAZES:
            raise InputError(f"gaze must be {' or '.join(GAZES)}, got {self.gaze!r}")
        if self.fill not in FILLS:
            raise InputError(f"fill must be {' or '.join(FILLS)}, got {self.fill!r}")
        if self.narrow_eyes not in NARROW_EYES:
            raise InputError(f"narrow eyes must be {' or '.join(NARROW_EYES)}, got {self.narrow_eyes!r}")


MESH3D_INFO = SwapperInfo(
    name="mesh3d",
    summary="mesh3d (default, training-free 3-D mesh warp, needs --source)",
    options_type=Mesh3DOptions,
    options_title="mesh3d warp (--swapper mesh3d)",
    source_holes=True,
    swap_state=True,
    options=(
        SwapperOption("shape_strength", float, "how much of the source's face shape, 0–1 (default 1)", "S"),
        SwapperOption(
            "expression_strength", float, "how much of the target's expression, 0–1 (default 1)", "S"
        ),
        SwapperOption("brow_strength", float, "how much of the source's brow shape, 0–1 (default 0.7)", "S"),
        SwapperOption(
            "relight",
            float,
            "how much of the source's own lighting is replaced by the target's, 0–1 (default 0.5; "
            "--swapper refined: the strength its model was trained with)",
            "S",
        ),
        SwapperOption("gaze", str, "where the eyes look: target (default) or source", "WHO", GAZES),
        SwapperOption(
            "fill",
            str,
            "with --occlusion on, what replaces hidden parts of the source's face: mirror (default: "
            "its other side, when the source faces the camera) or target (the target's own face)",
            "HOW",
            FILLS,
        ),
        SwapperOption(
            "narrow_eyes",
            str,
            "where the source's eye is far narrower than the target's (a squint, a wink): target (default: "
            "the target's own eye shows there) or stretch (the source's is stretched open)",
            "HOW",
            NARROW_EYES,
        ),
    ),
)


def _similarity_2d(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    return umeyama(src[:, :2], dst[:, :2])


def transfer_shape(
    src_n: np.ndarray, tgt_n: np.ndarray, canonical: CanonicalMesh, opts: Mesh3DOptions
) -> np.ndarray:
    """Source identity geometry with the target's expression, both in the canonical frame."""
    res = src_n.copy()
    e = opts.expression_strength
    # eyes and brows: target's lids relative to its eye corners, mapped onto the source's corners
    for eye, brow, iris, (c0, c1) in (
        (EYE_IMAGE_LEFT, BROW_IMAGE_LEFT, IRIS_IMAGE_LEFT, (33, 133)),
        (EYE_IMAGE_RIGHT, BROW_IMAGE_RIGHT, IRIS_IMAGE_RIGHT, (362, 263)),
    ):
        corners = [c0, c1]
        s, r, t = _similarity_2d(tgt_n[corners], src_n[corners])
        for group, w in ((eye + iris, e), (brow, e * opts.brow_strength)):
            g = idx(group)
            g = g[g < len(src_n)]
            moved = tgt_n[g].copy()
            moved[:, :2] = s * tgt_n[g, :2] @ r.T + t
            res[g] = src_n[g] + w * (moved - src_n[g])
    # mouth: the target's lips, scaled about the target's upper-lip centre by the mouth-width ratio, so
    # the inner mouth lines up with the target's own (its teeth are kept when its mouth is open)
    lips = idx(LIPS)
    width_s = np.linalg.norm(src_n[291, :2] - src_n[61, :2])
    width_t = np.linalg.norm(tgt_n[291, :2] - tgt_n[61, :2])
    k = float(np.clip(float(width_s) / max(float(width_t), 1e-6), 0.6, 1.6))
    moved = tgt_n[0] + k * (tgt_n[lips] - tgt_n[0])
    res[lips] = src_n[lips] + e * (moved - src_n[lips])
    # jaw: vertices below the mouth corners follow the lower lip's vertical displacement
    drop = res[17] - src_n[17]
    y_corner = (src_n[61, 1] + src_n[291, 1]) / 2
    span = max(src_n[152, 1] - y_corner, 1e-6)
    lip_set = set(lips.tolist())
    below = np.array([i for i in range(468) if src_n[i, 1] > y_corner and i not in lip_set])
    wgt = np.clip((src_n[below, 1] - y_corner) / span, 0.0, 1.0)
    # fade the displacement towards the sides of the face (the jaw hinges near the ears)
    half_width = max(np.abs(src_n[:468, 0]).max(), 1e-6)
    wgt *= np.clip(1.2 - np.abs(src_n[below, 0]) / half_width, 0.0, 1.0)
    res[below] = src_n[below] + wgt[:, None] * drop
    return tgt_n + opts.shape_strength * (res - tgt_n)


def _triangle_affines(dst: np.ndarray, src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form solve of [x y 1] @ X = (u, v) for every triangle (T×3×2 each): returns the (T+1)×6
    float32 coefficients (x_u, x_v, y_u, y_v, 1_u, 1_v; the extra last row maps to "nowhere") and the
    mask of non-degenerate triangles."""
    x0, y0 = dst[:, 0, 0], dst[:, 0, 1]
    x1, y1 = dst[:, 1, 0], dst[:, 1, 1]
    x2, y2 = dst[:, 2, 0], dst[:, 2, 1]
    det = x0 * (y1 - y2) + x1 * (y2 - y0) + x2 * (y0 - y1)
    ok = np.abs(det) > 1e-6
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # rows of the inverse of [[x0 y0 1] [x1 y1 1] [x2 y2 1]] (adjugate / det)
    inv = (
        np.stack(
            [
                np.stack([y1 - y2, y2 - y0, y0 - y1], -1),
                np.stack([x2 - x1, x0 - x2, x1 - x0], -1),
                np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], -1),
            ],
            axis=1,
        )
        * inv_det[:, None, None]
    )
    coef = np.zeros((len(dst) + 1, 6), np.float32)
    coef[:-1] = np.einsum("tij,tjk->tik", inv, src).reshape(-1, 6)
    coef[-1] = [0, 0, 0, 0, -1, -1]
    return coef, ok


def rasterise_triangles(
    dst_pts: np.ndarray,
    triangles: np.ndarray,
    order: np.ndarray,
    size: tuple[int, int],
    outline: np.ndarray | None = None,
) -> np.ndarray:
    """Which triangle covers each pixel of a ``size`` (w, h) canvas (``len(triangles)`` where none does).

    Triangles are rasterised in ``order`` (far first) so the nearest surface wins. Pixels inside the
    ``outline`` polygon that no triangle covers (collapsed lips, rounding) take the triangle of the
    nearest covered pixel, so the face has no holes. This is the expensive part of
    :func:`piecewise_affine_maps`, and depends only on where the triangles land: one rasterisation
    serves several sources (the source's points and their mirror images).
    """
    w, h = size
    ids = np.full((h, w), -1, np.int32)
    fixed = np.round(dst_pts * 16).astype(np.int32)  # 4 fractional bits for cv2's shift
    polys = fixed[triangles[order]]
    for poly, k in zip(polys, order.tolist(), strict=True):
        cv2.fillConvexPoly(ids, poly, k, cv2.LINE_8, 4)
    if outline is not None:
        inside = np.zeros((h, w), np.uint8)
        cv2.fillPoly(inside, [np.round(outline * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        holes = (inside > 0) & (ids < 0)
        if holes.any() and (ids >= 0).any():
            # every hole pixel takes the triangle of its nearest covered pixel
            _, labels = cv2.distanceTransformWithLabels(
                (ids < 0).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
            )
            lut = np.zeros(labels.max() + 1, np.int32)
            covered = ids >= 0
            lut[labels[covered]] = ids[covered]
            ids[holes] = lut[labels[holes]]
    ids[ids < 0] = len(triangles)
    return ids


def affine_maps(
    ids: np.ndarray, dst_pts: np.ndarray, src_pts: np.ndarray, triangles: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense maps (for cv2.remap) from the canvas rasterised in ``ids`` (:func:`rasterise_triangles`) to
    source pixels: each pixel through the affine map of its triangle from ``dst_pts`` to ``src_pts``;
    and where that is defined (covered by a triangle that is not degenerate). Each pixel's values stay
    within its triangle's corners' range: inside the triangle they do anyway, and the pixels the
    rasteriser gave to a nearby triangle (a closed mouth's gap takes its lips' slivers) would otherwise
    extrapolate its map without bound — into the teeth, or far off the face."""
    h, w = ids.shape
    # affine per triangle: [x y 1] @ X = source (x, y); degenerate triangles map nowhere
    corners = src_pts[triangles]
    coef, ok = _triangle_affines(dst_pts[triangles], corners)
    cols = np.ascontiguousarray(coef.T)  # (6, n): rows x, y, 1 of X, columns source x, y
    nowhere = np.full((1, 2), -1.0)
    lo = np.ascontiguousarray(np.vstack([corners.min(1), nowhere]).T.astype(np.float32))
    hi = np.ascontiguousarray(np.vstack([corners.max(1), nowhere]).T.astype(np.float32))
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    map_x = cols[0][ids] * xs
    map_x += cols[2][ids] * ys
    map_x += cols[4][ids]
    np.maximum(map_x, lo[0][ids], out=map_x)
    np.minimum(map_x, hi[0][ids], out=map_x)
    map_y = cols[1][ids] * xs
    map_y += cols[3][ids] * ys
    map_y += cols[5][ids]
    np.maximum(map_y, lo[1][ids], out=map_y)
    np.minimum(map_y, hi[1][ids], out=map_y)
    cover = ids < len(triangles)
    cover &= np.append(ok, False)[ids]
    return map_x, map_y, cover


def piecewise_affine_maps(
    dst_pts: np.ndarray,
    src_pts: np.ndarray,
    triangles: np.ndarray,
    order: np.ndarray,
    size: tuple[int, int],
    outline: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense maps (for cv2.remap) from a ``size`` (w, h) canvas to source pixels, triangle by triangle
    (:func:`rasterise_triangles`, then :func:`affine_maps`)."""
    ids = rasterise_triangles(dst_pts, triangles, order, size, outline)
    return affine_maps(ids, dst_pts, src_pts, triangles)


class Mesh3DSwapper:
    """Training-free 3-D-aware swapper over mediapipe meshes."""

    info: ClassVar[SwapperInfo] = MESH3D_INFO

    def __init__(self, options: Mesh3DOptions | None = None, canonical: CanonicalMesh | None = None) -> None:
        self.options = options or Mesh3DOptions()
        self.canonical = canonical or CanonicalMesh()

    @cached_property
    def _skin_triangles(self) -> np.ndarray:
        """Triangles without those spanning the mouth opening (the source's teeth never get squeezed
        into a closed target mouth; an open one keeps the target's interior)."""
        tri = self.canonical.triangles
        inner = np.isin(tri, idx(INNER_MOUTH)).all(axis=1)
        return tri[~inner]

    def result_mesh(self, source: Face, target: Face) -> np.ndarray:
        if source.mesh is None or target.mesh is None:
            raise SkipFace("the mesh3d swapper needs mediapipe landmarks (478-point mesh) on both faces")
        cm = self.canonical
        fit_s, fit_t = cm.fit(source.mesh), cm.fit(target.mesh)
        res_n = transfer_shape(
            fit_s.to_canonical(source.mesh), fit_t.to_canonical(target.mesh), cm, self.options
        )
        return fit_t.from_canonical(res_n)

    def eye_fans(self, source_mesh: np.ndarray, result_mesh: np.ndarray) -> np.ndarray:
        """Triangles that fan each eye opening from its iris centre to the lids, so the source's iris
        lands where the target's iris is (the target's gaze), instead of the canonical triangles that
        carry the source's eyeball as it was; an eye keeps its canonical triangles where a fan would
        fold (the iris centre outside the lids, or a nearly closed eye)."""
        keep = np.ones(len(self._skin_triangles), bool)
        fans = []
        for lids, iris in ((EYE_IMAGE_LEFT, IRIS_IMAGE_LEFT[0]), (EYE_IMAGE_RIGHT, IRIS_IMAGE_RIGHT[0])):
            loop = idx(lids)
            if not all(_fan_ok(m[loop, :2], m[iris, :2]) for m in (source_mesh, result_mesh)):
                continue
            keep &= ~np.isin(self._skin_triangles, loop).all(axis=1)
            fans.append(np.stack([np.full(len(loop), iris), loop, np.roll(loop, -1)], 1))
        if not fans:
            return self._skin_triangles
        return np.concatenate([self._skin_triangles[keep], *fans])

    def warp_maps(
        self, source: Face, target: Face, shape: tuple[int, ...], mirrored: bool = False
    ) -> WarpMaps:
        """Where each pixel of the swapped face comes from in the source photo (the expensive part of a
        swap; :meth:`render` then only resamples, so one set of maps serves several source images, e.g.
        a source with and without an occluder). ``mirrored``: from the mirror-image point of the source's
        face instead (its left cheek for the right one, …), the fill for source texels that are hidden."""
        return self._warps(source, target, shape, (mirrored,))[0]

    def _warps(
        self, source: Face, target: Face, shape: tuple[int, ...], mirrored: tuple[bool, ...]
    ) -> list[WarpMaps]:
        """:meth:`warp_maps` for each of ``mirrored``, the triangles rasterised once for all of them."""
        res = self.result_mesh(source, target)
        assert source.mesh is not None
        h, w = shape[:2]
        lo = np.floor(res[:468, :2].min(0)).astype(int) - 2
        hi = np.ceil(res[:468, :2].max(0)).astype(int) + 3
        x0, y0 = max(0, lo[0]), max(0, lo[1])
        x1, y1 = min(w, hi[0]), min(h, hi[1])
        if x1 - x0 < 4 or y1 - y0 < 4:
            raise SkipFace("the swapped face falls outside the target image")
        n = len(res) if self.options.gaze == "target" else 468
        tri = self.eye_fans(source.mesh, res) if n > 468 else self._skin_triangles
        dst = res[:n, :2] - [x0, y0]
        order = np.argsort(-res[:n, 2][tri].mean(1))  # far (large z) first
        size = (x1 - x0, y1 - y0)
        outline = idx(FACE_OVAL)
        # maps are piecewise linear: for large faces compute them coarser and interpolate up
        k = min(1.0, self.options.map_resolution / max(size))
        small = (max(4, round(size[0] * k)), max(4, round(size[1] * k))) if k < 1.0 else size
        canvas_dst = (dst + 0.5) * k - 0.5 if k < 1.0 else dst
        ids = rasterise_triangles(canvas_dst, tri, order, small, outline=canvas_dst[outline])
        out = []
        for mirror in mirrored:
            src = source.mesh[self.canonical.mirror[:n] if mirror else slice(0, n), :2]
            map_x, map_y, cover = affine_maps(ids, canvas_dst, src, tri)
            if k < 1.0:
                map_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)
                map_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)
                cover = cv2.resize(cover.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            out.append(
                WarpMaps(map_x, map_y, cover.astype(np.float32), int(x0), int(y0), res, ids, canvas_dst, tri)
            )
        return out

    @staticmethod
    def render(
        source_rgb: np.ndarray,
        maps: WarpMaps,
        holes: np.ndarray | None = None,
        mirror: WarpMaps | None = None,
    ) -> SwapPatch:
        """The source photo resampled through ``maps``: the patch over the target. ``holes`` (float, source
        photo size, 0..1): source texels to leave out (what covers the source's face); where ``mirror``
        (the :meth:`warp_maps` of the mirror-image points) reaches visible texels they fill the holes,
        brought to the brightness of the face around them; the rest is taken out of the patch's coverage
        so the target shows there. The patch's ``hidden`` is where holes were (within the coverage)."""
        patch = cv2.remap(source_rgb, maps.map_x, maps.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        cover = maps.coverage
        hidden = None
        if holes is not None:
            gone = _remap_holes(holes, maps)
            hidden = gone * cover
            if mirror is not None and float(gone.max()) > 0.05:
                gone_m = _remap_holes(holes, mirror)
                use = gone * (1.0 - gone_m) * mirror.coverage
                if float(use.max()) > 0.05:
                    flipped = cv2.remap(
                        source_rgb,
                        mirror.map_x,
                        mirror.map_y,
                        cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REFLECT,
                    )
                    seen = (gone < 0.05) & (gone_m < 0.05) & (cover > 0.5) & (mirror.coverage > 0.5)
                    patch = _fill(patch, flipped, use, seen)
                gone = gone * (1.0 - use)
            cover = cover * (1.0 - gone)
        return SwapPatch(image=patch, coverage=cover, x0=maps.x0, y0=maps.y0, mesh=maps.mesh, hidden=hidden)

    def mirror_allowed(self, source: Face) -> bool:
        """Whether the source is frontal enough (|yaw| ≤ :data:`MIRROR_MAX_YAW`) for its other side to
        stand in for a hidden part."""
        if source.mesh is None:
            return False
        pose, _ = self.canonical.pose(source.mesh)
        return abs(pose.yaw) <= MIRROR_MAX_YAW

    def swap(
        self, source_rgb: np.ndarray | None, source: Face | None, target_rgb: np.ndarray, target: Face,
        holes: np.ndarray | None = None, state: dict[str, Any] | None = None,
    ) -> SwapPatch:  # fmt: skip
        """The source's face warped onto the target's (with ``holes``: hidden source texels filled or left
        out) and relit. ``state``: video's dict for this tracked person, which keeps the light steady."""
        if source_rgb is None or source is None:
            raise SkipFace("the mesh3d swapper needs a source face")
        maps, mirror = self.fill_maps(source, target, target_rgb.shape, holes is not None)
        return self.swap_through(maps, mirror, source_rgb, source, target_rgb, target, holes, state)

    def swap_through(
        self, maps: WarpMaps, mirror: WarpMaps | None, source_rgb: np.ndarray, source: Face,
        target_rgb: np.ndarray, target: Face, holes: np.ndarray | None = None,
        state: dict[str, Any] | None = None,
    ) -> SwapPatch:  # fmt: skip
        """:meth:`swap` through maps already made (:meth:`fill_maps`; one set serves several versions
        of a source photo): rendered, relit, and without the eyes the source has too narrow."""
        patch = self.render(source_rgb, maps, holes, mirror)
        patch = self.relit(patch, source_rgb, source, target_rgb, target, holes, state, maps)
        return self.narrow_eyes(patch, source, target)

    def narrow_eyes(self, patch: SwapPatch, source: Face, target: Face) -> SwapPatch:
        """``patch`` without the eyes the source has too narrow to open as wide as the target's (a
        squint or a smile's narrowed eyes: their lashes, stretched, made dark blurred holes): there
        the target's own eye shows, its opening grown and feathered by a little of the face's size, as
        an open target mouth keeps its teeth. The target's eye takes over gradually across
        :data:`NARROW_EYE` (the source's opening over the target's), so that in video a target whose
        eyes open and close around the threshold does not make the eye flip between the two."""
        if target.mesh is None or self.options.narrow_eyes == "stretch":
            return patch
        lo, hi = NARROW_EYE
        narrow = []
        for loop, key in ((EYE_IMAGE_LEFT, "eye_open_left"), (EYE_IMAGE_RIGHT, "eye_open_right")):
            ratio = source.expression.get(key, 1.0) / max(target.expression.get(key, 0.0), 1e-6)
            if ratio < hi:
                narrow.append((loop, min(1.0, (hi - ratio) / (hi - lo))))
        if not narrow:
            return patch
        h, w = patch.coverage.shape
        cut = np.zeros((h, w), np.float32)
        for loop, weight in narrow:
            pts = target.mesh[idx(loop), :2] - [patch.x0, patch.y0]
            cv2.fillPoly(cut, [np.round(pts * 16).astype(np.int32)], weight, cv2.LINE_AA, 4)
        grow = max(1.0, 0.015 * float(np.ptp(target.mesh[:468, 1])))
        g = int(round(grow))
        cut = cv2.dilate(cut, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1)))
        cut = cv2.GaussianBlur(cut, (0, 0), grow)
        return dataclasses.replace(patch, coverage=patch.coverage * (1.0 - cut))

    @cached_property
    def _skin(self) -> np.ndarray:
        return skin_vertices(self.canonical.vertices)

    def relit(
        self, patch: SwapPatch, source_rgb: np.ndarray, source: Face, target_rgb: np.ndarray, target: Face,
        holes: np.ndarray | None = None, state: dict[str, Any] | None = None, maps: WarpMaps | None = None,
    ) -> SwapPatch:  # fmt: skip
        """``patch`` (:meth:`render`'s) with the source's own light taken out and the target's put in, by
        the ``relight`` option's strength (:mod:`.relight`); as it was where either face's light cannot be
        estimated. ``holes``: source texels hidden by an occluder, left out of the source's estimate.
        ``state`` (video, one dict per tracked person): the source's light is estimated once, the
        target's is averaged over frames (:data:`~.relight.VIDEO_SMOOTHING`), so the face does not
        flicker with the estimate's noise. ``maps``: the patch's own (their rasterisation is reused)."""
        strength = float(self.options.relight)
        if strength <= 0.0 or source.mesh is None or target.mesh is None:
            return patch
        tri, skin = self.canonical.triangles, self._skin
        key = (id(source_rgb), id(source), id(holes))
        known = state.get("relight_source") if state is not None else None
        if known is not None and known[0] == key:
            light_s, n_s = known[1:]
        else:
            exclude = None
            if holes is not None:
                at = source.mesh[:468, :2].astype(np.float32)
                seen = cv2.remap(holes, at[None, :, 0], at[None, :, 1], cv2.INTER_LINEAR)
                exclude = seen.ravel() > 0.5
            light_s, n_s = face_lighting(source_rgb, source.mesh, tri, skin, exclude)
            if state is not None:
                state["relight_source"] = (key, light_s, n_s)
        light_t, _ = face_lighting(target_rgb, target.mesh, tri, skin)
        if light_s is None or light_t is None:
            return patch
        if state is not None:
            before = state.get("relight_target")
            if before is not None:
                light_t = Lighting(before + VIDEO_SMOOTHING * (light_t.coeffs - before))
            state["relight_target"] = light_t.coeffs
        n_r = vertex_normals(patch.mesh, tri)
        ratio = vertex_ratio(light_t, n_r, light_s, n_s, skin, strength)
        h, w = patch.image.shape[:2]
        if maps is not None:
            ids, pts, faces = maps.ids, maps.canvas_points, maps.triangles
        else:
            ids, pts = ratio_canvas(patch.mesh[:468] - [patch.x0, patch.y0, 0], tri, (w, h))
            faces = tri
        gain = ratio_image(ratio, ids, pts, faces, (w, h))
        image = cv2.multiply(patch.image, cv2.merge([gain, gain, gain]), dtype=cv2.CV_8U)
        return dataclasses.replace(patch, image=image)

    def fill_maps(
        self, source: Face, target: Face, shape: tuple[int, ...], holes: bool
    ) -> tuple[WarpMaps, WarpMaps | None]:
        """A swap's :meth:`warp_maps`, and when the source has ``holes`` (hidden texels) the mirror-image
        maps that fill them, if the ``fill`` option and the source's pose allow it (else None)."""
        mirror = holes and self.options.fill == "mirror" and self.mirror_allowed(source)
        maps = self._warps(source, target, shape, (False, True) if mirror else (False,))
        return maps[0], maps[1] if mirror else None


# an eye of the source opened less than the first share of the target's (lids' gap over the eye's
# width) is left to the target, one opened more than the second is the source's, and in between the
# target's takes over linearly (Mesh3DSwapper.narrow_eyes)
NARROW_EYE = (0.6, 0.7)
MIRROR_MAX_YAW = 30.0  # degrees: beyond this the far side of the source is too foreshortened to mirror


def _remap_holes(holes: np.ndarray, maps: WarpMaps) -> np.ndarray:
    gone = cv2.remap(holes, maps.map_x, maps.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return np.clip(gone, 0.0, 1.0)


def _fill(patch: np.ndarray, flipped: np.ndarray, use: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``patch`` with ``flipped`` blended in by ``use``, the flipped texels scaled per channel so that they
    match the patch where both sides are ``seen``, near the holes first (one side of a face is often lit
    more than the other)."""
    grow = max(2, max(use.shape) // 12)
    near = cv2.dilate((use > 0.05).astype(np.uint8), np.ones((3, 3), np.uint8), iterations=grow) > 0
    both = near & seen
    if int(both.sum()) < 50:
        both = seen
    gain = np.ones(3, np.float32)
    if int(both.sum()) >= 50:
        a = patch[both].astype(np.float32).mean(0)
        b = flipped[both].astype(np.float32).mean(0)
        gain = np.clip(a / np.maximum(b, 1.0), 0.6, 1.6).astype(np.float32)
    u = use[..., None]
    out = patch.astype(np.float32) * (1.0 - u) + flipped.astype(np.float32) * gain * u
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class WarpMaps:
    """cv2.remap maps from the patch (target pixels ``[y0:, x0:]``) into the source photo, the pixels they
    cover, and the swapped face's mesh in target pixels."""

    map_x: np.ndarray
    map_y: np.ndarray
    coverage: np.ndarray
    x0: int
    y0: int
    mesh: np.ndarray
    # the rasterisation behind the maps (:func:`rasterise_triangles`; computed at most
    # ``map_resolution`` px on a side): which triangle covers each canvas pixel, where the mesh's points
    # land on that canvas, the triangles — so more values can be interpolated over the face for free
    ids: np.ndarray
    canvas_points: np.ndarray
    triangles: np.ndarray


def _fan_ok(lids: np.ndarray, centre: np.ndarray) -> bool:
    """Whether a fan from ``centre`` to the closed ``lids`` loop is a proper (unfolded) triangulation: the
    centre well inside and the eye open (opening at least a sixth of its width)."""
    width = float(np.ptp(lids[:, 0])) or 1.0
    if float(np.ptp(lids[:, 1])) < width / 6:
        return False
    if (
        cv2.pointPolygonTest(lids.astype(np.float32), (float(centre[0]), float(centre[1])), True)
        < width * 0.05
    ):
        return False
    d = np.roll(lids, -1, axis=0) - lids
    r = lids - centre
    cross = r[:, 0] * d[:, 1] - r[:, 1] * d[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))
