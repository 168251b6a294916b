"""The refined swapper: the training-free 3-D warp (:mod:`.mesh3d`) plus a learned correction.

The warp carries the source's identity and the target's geometry; after the usual mask, colour and blend,
a small network (``masquerade train refiner``, :mod:`masquerade.training.refiner`) looks at the result
around the face (a ``resolution``-px crop, the ``refine`` template of
:mod:`masquerade.analysis.alignment`) and predicts a bounded correction — relighting, what a bad source
photo brought (hands, hair, sunglasses, blur), seams. The correction is resampled to the face's size in
the photo and added there, so the warp's own detail stays at full resolution. On a photo (``mirror``, on by
default) the network also looks at the mirrored crop and the two corrections are averaged (one batch of
two: it was trained on mirrored crops too, and the average is steadier); in a video the running average
over frames does that job, at no extra cost per frame.

The model ships in the package (``data/models/refiner``: ``model.json`` + ``refiner.onnx``, sha256-checked,
with its model card; registry name ``masquerade-refiner``); ``--model DIR`` takes another trained one.
Its ONNX contract: inputs ``image`` (float32 N×3×R×R, the composite crop, RGB in [0, 1]), ``mask``
(N×1×R×R, the composite's mask), ``parts`` (N×3×R×R: the target's eyes, irises and inner mouth) and
``identity`` (N×128, the source's unit dlib embedding), and in models trained with occlusion handling on
(their ``model.json`` lists it among the inputs) ``hidden`` (N×1×R×R: where the source's own texels were
hidden — filled from the other side of the face or left to the target; zero with ``--occlusion off``),
and in models trained with ``--shade`` ``target`` (N×3×R×R: the target's own crop before the swap, the
same way; the network blurs it to its ``shade`` px itself, so it sees the light on the face, not its
detail); output ``correction`` (N×3×R×R, added to the crop).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from ..analysis.alignment import invert_affine, similarity_matrix, template
from ..errors import ModelError
from ..face import Face
from .aligned import ModelInfo, SourceIdentities, folder_kind, onnx_session, read_model_folder
from .base import SwapperInfo
from .mesh3d import MESH3D_INFO, Mesh3DOptions, Mesh3DSwapper

if TYPE_CHECKING:
    from ..compose.composite import BlendMask

MODEL_FORMAT = "masquerade-refiner"
MODEL_VERSION = 1
SHIPPED = "masquerade-refiner"  # the registry name of the model in the package
INPUTS = ("image", "mask", "parts", "identity")
HIDDEN = "hidden"  # an optional input (see the module docstring)
TARGET = "target"  # an optional input: the target's crop before the swap
OPTIONAL_INPUTS = (HIDDEN, TARGET)


def shipped_model_folder() -> Path:
    """The folder of the refiner that ships in the package (one-line :class:`ModelError` if absent)."""
    from ..models import get_model

    return get_model(SHIPPED).path().parent


@dataclass(frozen=True)
class RefinedOptions(Mesh3DOptions):
    """mesh3d's options for the refined swapper's warp; ``relight`` None (the default): the strength its
    model was trained with (:func:`model_relight`)."""

    relight: float | None = None  # type: ignore[assignment]
    _UNSET_ALLOWED: ClassVar[tuple[str, ...]] = ("relight",)


def model_relight(info: ModelInfo) -> float:
    """The relighting strength a refiner's training pairs were made with (its ``model.json``); models
    from before it was recorded were used with mesh3d's default."""
    value = info.meta.get("relight", Mesh3DOptions.relight)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ModelError(f"{info.folder}: model.json's relight must be a number from 0 to 1, not {value!r}")
    return float(value)


def read_refiner_info(folder: str | os.PathLike[str] | None = None, verify: bool = True) -> ModelInfo:
    """A refiner model folder's checked ``model.json`` (the shipped one by default; its ONNX file must
    also match the registry's sha256)."""
    if folder is None:
        from ..models import get_model

        spec = get_model(SHIPPED)
        info = read_model_folder(spec.path().parent, MODEL_FORMAT, "refiner", MODEL_VERSION, verify)
        if verify and info.sha256 != spec.sha256:
            raise ModelError(
                f"{info.onnx}: sha256 {info.sha256[:16]}… is not the shipped refiner's ({spec.sha256[:16]}…)"
            )
        return info
    return read_model_folder(folder, MODEL_FORMAT, "refiner", MODEL_VERSION, verify)


def takes_model(model: str | os.PathLike[str]) -> bool:
    return folder_kind(Path(model)) == "refined"


REFINED_INFO = SwapperInfo(
    name="refined",
    summary="refined (mesh3d warp + the shipped learned correction, or --model DIR; needs --source)",
    model_optional=True,
    model_help="DIR (a trained refiner model folder; default: the one in the package)",
    read_model=read_refiner_info,
    takes_model=takes_model,
    options_type=RefinedOptions,
    options=MESH3D_INFO.options,
    options_title="mesh3d warp of the refined swapper (--swapper refined)",
    refines=True,
    source_holes=True,
    swap_state=True,
)


def parts_map(mesh: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """size×size×3 uint8: the eyes (lids), the irises (discs), the inner mouth of a 478-point mesh,
    drawn in the crop ``matrix`` maps to."""
    from ..analysis.regions import EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT, INNER_MOUTH, idx

    pts = mesh[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    out = np.zeros((3, size, size), np.uint8)

    def poly(ch: int, loop: tuple[int, ...]) -> None:
        cv2.fillPoly(out[ch], [np.round(pts[idx(loop)] * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)

    poly(0, EYE_IMAGE_LEFT)
    poly(0, EYE_IMAGE_RIGHT)
    if len(pts) >= 478:
        for centre, ring in ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477))):
            r = float(np.mean(np.linalg.norm(pts[list(ring)] - pts[centre], axis=1)))
            c = tuple(int(v) for v in np.round(pts[centre] * 16))
            cv2.circle(out[1], c, max(1, int(round(r * 16))), 255, -1, cv2.LINE_AA, 4)
    poly(2, INNER_MOUTH)
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def crop_matrix(landmarks_5: np.ndarray, size: int) -> np.ndarray:
    """The 2×3 image → crop matrix of the refiner's crop of a face."""
    return similarity_matrix(np.asarray(landmarks_5, np.float64), template("refine", size))


def composite_crop(
    image: np.ndarray, mask: BlendMask, target: Face, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The refiner's view of a composite around ``target``: the crop (size×size×3 uint8), the composite's
    mask in it (float32 0..1), the parts map (:func:`parts_map`) and the image → crop matrix."""
    m = crop_matrix(target.landmarks_5, size)
    assert target.mesh is not None
    return target_crop(image, m, size), mask_crop(mask, m, size), parts_map(target.mesh, m, size), m


def target_crop(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """The size×size crop of ``image`` by the image → crop matrix ``m``, as the refiner's crops are cut
    (in training too)."""
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def mask_crop(mask: BlendMask, m: np.ndarray, size: int) -> np.ndarray:
    """A mask over a box of the image (``BlendMask``) in the crop of the image → crop matrix ``m``
    (size×size float32 0..1, zero outside the box)."""
    shifted = m.copy()
    shifted[:, 2] += m[:, :2] @ np.array([mask.x0, mask.y0], np.float64)
    out = cv2.warpAffine(mask.mask, shifted, (size, size), flags=cv2.INTER_AREA, borderValue=0)
    return np.clip(out, 0, 1).astype(np.float32)


class RefinedSwapper(Mesh3DSwapper):
    """mesh3d's warp, then the refiner's correction of the composite (see the module docstring)."""

    info: ClassVar[SwapperInfo] = REFINED_INFO

    def __init__(
        self, options: Mesh3DOptions | None = None, model: str | os.PathLike[str] | None = None,
        providers: list[str] | None = None, mirror: bool = True, **kwargs: Any,
    ) -> None:  # fmt: skip
        self.model_info = read_refiner_info(model)
        if options is None or options.relight is None:  # the model's own strength
            base = options if options is not None else RefinedOptions()
            options = dataclasses.replace(base, relight=model_relight(self.model_info))
        super().__init__(options, **kwargs)
        self.mirror = bool(mirror)
        self.session = onnx_session(self.model_info.onnx, providers, "the refiner")
        names = [i.name for i in self.session.get_inputs()]
        self.takes_hidden = HIDDEN in names
        self.takes_target = TARGET in names
        required = sorted(set(names) - set(OPTIONAL_INPUTS))
        if required != sorted(INPUTS) or len(self.session.get_outputs()) != 1:
            raise ModelError(
                f"{self.model_info.onnx}: expected inputs {', '.join(INPUTS)} (and optionally "
                f"{', '.join(OPTIONAL_INPUTS)}) and one output"
            )
        self.identities = SourceIdentities()
        self._pool: ThreadPoolExecutor | None = None  # video: the network's looks, beside the rendering
        self._providers = providers
        self._one_thread: Any = None  # video: the same model on one thread (the look's own)

    @property
    def resolution(self) -> int:
        return self.model_info.resolution

    def correction(
        self, image: np.ndarray, source_rgb: np.ndarray, source: Face, target: Face, mask: BlendMask,
        hidden: BlendMask | None = None, original: np.ndarray | None = None, mirror: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The network's correction (R×R×3, in 0..255 units) of ``target``'s crop and the image → crop
        matrix; ``mirror``: averaged with the mirrored crop's (None: the swapper's ``mirror``)."""
        feeds, m = self._feeds(image, source_rgb, source, target, mask, hidden, original)
        return self._run(feeds, mirror=self.mirror if mirror is None else mirror), m

    def _feeds(
        self, image: np.ndarray, source_rgb: np.ndarray, source: Face, target: Face, mask: BlendMask,
        hidden: BlendMask | None = None, original: np.ndarray | None = None,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:  # fmt: skip
        """The network's inputs for ``target``'s crop (copies: ``image`` may change after) and the image →
        crop matrix. ``original``: the frame before the swap (for a model that takes the target's crop;
        None: the composite stands in for it)."""
        crop, mcrop, parts, m = composite_crop(image, mask, target, self.resolution)
        feeds = {
            "image": crop.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255),
            "mask": mcrop[None, None],
            "parts": parts.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255),
            "identity": self.identities(source_rgb, source)[None].astype(np.float32),
        }
        r = self.resolution
        if self.takes_hidden:
            h = np.zeros((r, r), np.float32) if hidden is None else mask_crop(hidden, m, r)
            feeds[HIDDEN] = h[None, None]
        if self.takes_target:
            own = crop if original is None else target_crop(original, m, r)
            feeds[TARGET] = own.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
        return feeds, m

    def _run(self, feeds: dict[str, np.ndarray], session: Any = None, mirror: bool = False) -> np.ndarray:
        """The correction (R×R×3, 0..255 units); ``mirror``: averaged with the mirrored crop's, mirrored
        back (the crop is symmetric about its vertical centre line; the identity is the same)."""
        if mirror:
            feeds = {k: np.concatenate([v, v if k == "identity" else v[..., ::-1]]) for k, v in feeds.items()}
        (corr,) = (session or self.session).run(None, feeds)
        one = corr[0] if not mirror else (corr[0] + corr[1, :, :, ::-1]) * np.float32(0.5)
        return one.transpose(1, 2, 0) * np.float32(255)

    def _look(self, feeds: dict[str, np.ndarray]) -> Future[np.ndarray]:
        """The network's correction for ``feeds``, computed on the swapper's own thread, with a session of
        one thread: in a video the rendering goes on meanwhile, and the other core is decoding and
        encoding (one thread: 11 ms of CPU per look, against 14.5 ms on two that finish 2 ms sooner)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="masquerade-refine")
            self._one_thread = onnx_session(self.model_info.onnx, self._providers, "the refiner", threads=1)
        return self._pool.submit(self._run, feeds, self._one_thread)

    def refine(
        self, image: np.ndarray, source_rgb: np.ndarray | None, source: Face | None, target: Face,
        mask: BlendMask, state: dict[str, Any] | None = None, hidden: BlendMask | None = None,
        original: np.ndarray | None = None, keep: BlendMask | None = None,
    ) -> BlendMask | None:  # fmt: skip
        """Add the correction around ``target`` to ``image`` (the composite, changed in place); returns
        the pixels it changed (None: none). ``hidden``: where the source's own texels were hidden (the
        patch's ``hidden``, see :class:`~masquerade.swappers.base.SwapPatch`), for a model that takes it;
        ``original``: the frame before the swap, for a model that sees the target's own shading;
        ``keep``: what the target keeps in front of its face (the occlusion mask the composite took),
        left as it is by the correction too (the network's region is the composite's mask grown by a
        few pixels, which would otherwise reach over the edge of a hand or a fringe).

        ``state`` (video: one dict per tracked person, kept between frames) makes it cheaper and steadier:
        the network looks at every :data:`VIDEO_EVERY`-th frame of the person, on a thread of its own
        (the rendering of this frame and the next goes on meanwhile), and what it saw is averaged into
        the person's correction (:data:`VIDEO_SMOOTHING`) from the next frame on; the correction lives in
        the face's own coordinates, so it follows the face. The result does not depend on timing: a
        look is always folded in at the frame after it. A new person's first frame waits for its look."""
        if source_rgb is None or source is None or target.mesh is None:
            return None
        if state is None:
            corr, m = self.correction(image, source_rgb, source, target, mask, hidden, original)
            return add_correction(image, corr, m, keep)
        n = int(state.get("frame", 0))
        state["frame"] = n + 1
        look: Future[np.ndarray] | None = state.pop("look", None)
        if look is not None:
            state["corr"] = VIDEO_SMOOTHING * look.result() + (1 - VIDEO_SMOOTHING) * state["corr"]
        if "corr" not in state:
            state["corr"], m = self.correction(
                image, source_rgb, source, target, mask, hidden, original, mirror=False
            )
        elif n % VIDEO_EVERY == 0:  # this frame's look, folded in at the next frame
            feeds, m = self._feeds(image, source_rgb, source, target, mask, hidden, original)
            state["look"] = self._look(feeds)
        else:
            m = crop_matrix(target.landmarks_5, self.resolution)
        return add_correction(image, state["corr"], m, keep)


VIDEO_EVERY = 2  # video: the network looks at every second frame of a person
VIDEO_SMOOTHING = 0.5  # video: weight of a new correction against the running one


def add_correction(
    image: np.ndarray, corr: np.ndarray, m: np.ndarray, keep: BlendMask | None = None
) -> BlendMask | None:
    """Add a crop-space correction (R×R×3, 0..255 units) to ``image`` in place, resampled through the
    inverse of the image → crop matrix ``m``, and faded by ``1 − keep`` where ``keep`` (0..1, what the
    target keeps in front of its face) reaches; returns where it changed pixels by half a grey level or
    more."""
    from ..compose.composite import BlendMask

    r = corr.shape[0]
    h, w = image.shape[:2]
    inv = invert_affine(m)
    corners = np.array([[0, 0], [r, 0], [0, r], [r, r]], np.float64) @ inv[:, :2].T + inv[:, 2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), [w, h])
    if x1 <= x0 or y1 <= y0:
        return None
    back = m.copy()  # ROI pixel → crop pixel
    back[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    full = cv2.warpAffine(
        corr, back, (int(x1 - x0), int(y1 - y0)), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )  # fmt: skip
    if keep is not None:
        full *= (1.0 - keep.over(int(x0), int(y0), int(y1 - y0), int(x1 - x0)))[..., None]
    roi = image[y0:y1, x0:x1]
    # rounded, so a correction under half a grey level changes nothing (the mask below is exact)
    roi[:] = cv2.add(roi, full, dtype=cv2.CV_8U)
    a = np.abs(full)  # the largest change of the three channels (a reduction over the last axis is 9× slower)
    changed = np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2]) >= 0.5
    return BlendMask(changed.astype(np.float32), int(x0), int(y0))
