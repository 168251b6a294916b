"""The face-occlusion segmenter (``masquerade train segmenter``), trained self-supervised on faces with
synthetic occluders whose masks are known.

**Faces**: the refiner's photo analysis (:mod:`.warp_data`: the same folders, people and cache) gives
each photo's face; its crop (the ``refine`` template, ``resolution`` px) and face oval are cut once and
cached. Photos whose face already looks occluded (the non-skin share of
:func:`masquerade.evaluation.attributes.non_skin_share` at or above ``max_non_skin``) are left out, so
the "visible" label is mostly right.

**Samples**: a face with up to two occluders (:mod:`masquerade.occlusion.synthetic`: patches cut from
another face's surroundings, hands, hair strands, microphones, glasses), drawn from the step's seed in
crop coordinates; the label is the occluders' exact mask (alpha > ½); ``no_occluder`` of the samples
have none. Flips and brightness/contrast jitter.

**Network** (:class:`SegmenterNet`): a small U-Net on 4×4 pixel blocks (space-to-depth in, depth-to-space
out), one logit per pixel. **Loss**: binary cross-entropy plus soft Dice, inside the face oval grown by
6 % of the crop (outside it nothing is asked).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..files import atomic_write_bytes
from ..imageio import load_image
from ..occlusion.hand_cutouts import HandCutouts
from ..occlusion.segmenter import crop_matrix, oval_mask
from ..occlusion.synthetic import OCCLUDER_KINDS, REAL_HAND, make_occluder
from .common import parameter_count, preview_grid
from .configs import SegmenterConfig, SegmenterTrainConfig
from .trainer import StepContext, TrainTask

log = logging.getLogger(__name__)

BLOCK = 4
FACES_VERSION = 1


@dataclass(frozen=True)
class SegmenterFaces:
    """Face crops (N×R×R×3 uint8), their face ovals (N×R×R uint8) and 68 landmarks in the crop; with
    ``--occluders hands``, the hands cut out of the same photos."""

    images: np.ndarray
    ovals: np.ndarray
    landmarks: np.ndarray
    person: np.ndarray
    hands: HandCutouts = field(default_factory=HandCutouts.empty)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> SegmenterFaces:
        return SegmenterFaces(
            self.images[index], self.ovals[index], self.landmarks[index], self.person[index], self.hands
        )


def _faces_folder(cache: str | os.PathLike[str] | None, key: str) -> Path:
    from .warp_data import _cache_root

    return _cache_root(cache) / "segmenter-faces" / hashlib.sha256(key.encode()).hexdigest()[:16]


def load_segmenter_faces(
    cfg: SegmenterTrainConfig, seed: int = 0, cache: str | os.PathLike[str] | None = None, workers: int = 1,
    progress: Any = None,
) -> tuple[SegmenterFaces, str]:  # fmt: skip
    """The clean faces of ``cfg``'s folders (cut once, then cached) and a one-line summary; ``progress(stage,
    done, total)``. (``seed``: unused, the faces do not depend on it.)"""
    from ..evaluation.attributes import non_skin_share
    from .warp_data import analyse_photos, training_people

    people = training_people(cfg)
    stage = None if progress is None else (lambda d, t: progress("analysing photos", d, t))
    photos = analyse_photos(people, cache, workers, stage)
    r = cfg.resolution
    key = json.dumps(["segmenter-faces", FACES_VERSION, r, sorted(p.path for p in photos)])
    folder = _faces_folder(cache, key)
    dest = folder / "faces.npz"
    if not dest.is_file():
        images, ovals, lms, person, shares = [], [], [], [], []
        for ph in photos:
            rgb = load_image(ph.path).rgb
            m = crop_matrix(ph.face.landmarks_5, r)
            crop = cv2.warpAffine(rgb, m, (r, r), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
            assert ph.face.mesh is not None
            images.append(crop)
            ovals.append((oval_mask(ph.face.mesh, m, r) * 255).astype(np.uint8))
            lms.append(ph.face.landmarks_68 @ m[:, :2].T + m[:, 2])
            person.append(ph.person)
            shares.append(non_skin_share(rgb, ph.face))
        buf = io.BytesIO()
        np.savez(
            buf, images=np.stack(images), ovals=np.stack(ovals), landmarks=np.stack(lms).astype(np.float32),
            person=np.array(person, dtype=str), non_skin=np.array(shares, np.float32),
        )  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, buf.getvalue())
    hands = HandCutouts.empty()
    if cfg.occluders == "hands":
        from .hand_data import load_hand_cutouts

        found = None if progress is None else (lambda d, t: progress("cutting out hands", d, t))
        hands = load_hand_cutouts(photos, cache, workers, found)
        if not len(hands):
            raise InputError("--occluders hands: no hand was found in the training photos")
    with np.load(dest, allow_pickle=False) as z:
        keep = z["non_skin"] < cfg.max_non_skin
        faces = SegmenterFaces(
            z["images"][keep], z["ovals"][keep], z["landmarks"][keep], z["person"][keep], hands
        )
        dropped = int((~keep).sum())
    if len(faces) < 2:
        raise InputError("the segmenter needs at least 2 clean faces")
    n_people = len(set(faces.person.tolist()))
    summary = f"{len(faces)} clean faces of {n_people} people ({dropped} left out as occluded)"
    return faces, summary + (f", {len(hands)} real hands" if len(hands) else "")


# the "realistic" mix (SegmenterTrainConfig.occluders): what real photos show most in front of faces
# (the hand-drawn real set: bangs, hands on the face, sunglasses) gets most of the draws
REALISTIC_WEIGHTS: dict[str, float] = {
    "patch": 0.12, "hand": 0.08, "strands": 0.1, "bar": 0.08, "glasses": 0.08,
    "bangs": 0.2, "palm": 0.2, "sunglasses": 0.14,
}  # fmt: skip
# the "hands" mix: the realistic one with real hands cut out of photos taking most of the drawn hands' draws
HANDS_WEIGHTS: dict[str, float] = {
    **REALISTIC_WEIGHTS, "hand": 0.04, "palm": 0.08, REAL_HAND: 0.24,
}  # fmt: skip


def _pick_kind(rng: np.random.Generator, occluders: str) -> str:
    if occluders == "basic":
        return OCCLUDER_KINDS[int(rng.integers(len(OCCLUDER_KINDS)))]
    weights = HANDS_WEIGHTS if occluders == "hands" else REALISTIC_WEIGHTS
    kinds = tuple(weights)
    w = np.array([weights[k] for k in kinds])
    return kinds[int(rng.choice(len(kinds), p=w / w.sum()))]


def photo_augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a camera does to a whole scene, occluders included, so that pasted edges and flat colours do
    not give the occluders away and shadows are not mistaken for them: a soft shadow across the face
    (a third of samples), slight blur (40 %), JPEG (30 %)."""
    out = img
    r = img.shape[0]
    if rng.random() < 1 / 3:
        yy, xx = np.mgrid[0:r, 0:r].astype(np.float32) / r - 0.5
        ang = rng.uniform(0, 2 * np.pi)
        d = np.cos(ang) * xx + np.sin(ang) * yy - rng.uniform(-0.25, 0.25)
        edge = 1 / (1 + np.exp(-d / rng.uniform(0.02, 0.12)))
        shade = 1 - rng.uniform(0.2, 0.5) * edge
        out = np.clip(out.astype(np.float32) * shade[..., None], 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 91))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return out


def occluded_sample(
    faces: SegmenterFaces, i: int, rng: np.random.Generator, no_occluder: float, occluders: str = "basic"
) -> tuple[np.ndarray, np.ndarray]:
    """Face ``i`` with 0–2 synthetic occluders (``occluders``: the kinds' mix, see
    :class:`SegmenterTrainConfig`): (R×R×3 uint8 image, R×R float32 label)."""
    img = faces.images[i]
    r = img.shape[0]
    label = np.zeros((r, r), np.float32)
    out = img
    if rng.random() >= no_occluder:
        for _ in range(1 + int(rng.random() < 0.3)):
            kind = _pick_kind(rng, occluders)
            j = int(rng.integers(len(faces)))
            box = np.array([0, 0, r, r], np.float64) * np.array([0.2, 0.15, 0.8, 0.95])
            seed = int(rng.integers(2**31))
            layer = make_occluder(
                kind, seed, faces.landmarks[i], img.shape, faces.images[j], box, image=img, hands=faces.hands
            )
            out = layer.over(out)
            label = np.maximum(label, layer.mask.astype(np.float32))
    if occluders != "basic":
        out = photo_augment(out, rng)
    return out, label


def turn_asymmetry(landmarks: np.ndarray) -> np.ndarray:
    """N×68×2 landmarks (an upright crop) → N: how far each face is turned, as the difference of the nose
    tip's distances to the face's left and right edges (landmarks 0 and 16) over the face's width
    (0: frontal; about 0.2 for CelebA's median face, over 0.6 for one in ten)."""
    x0, x16, tip = landmarks[:, 0, 0], landmarks[:, 16, 0], landmarks[:, 30, 0]
    return np.abs((tip - x0) - (x16 - tip)) / np.maximum(x16 - x0, 1e-3)


class SegmenterNet(nn.Module):
    """Face crop (N×3×R×R in [0, 1]) → occlusion logits (N×1×R×R)."""

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        c0, c1, c2, c3 = config.channels

        def block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(cout, cout, 3, 1, 1),
                nn.LeakyReLU(0.2),
            )

        self.e0, self.e1 = block(3 * BLOCK * BLOCK, c0), block(c0, c1, 2)
        self.e2, self.e3 = block(c1, c2, 2), block(c2, c3, 2)
        self.d2, self.d1, self.d0 = block(c3 + c2, c2), block(c2 + c1, c1), block(c1 + c0, c0)
        self.out = nn.Conv2d(c0, BLOCK * BLOCK, 3, 1, 1)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(mod.bias)
        nn.init.normal_(self.out.weight, std=1e-3)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.pixel_unshuffle(image * 2 - 1, BLOCK)
        a = self.e0(x)
        b = self.e1(a)
        c = self.e2(b)
        d = self.e3(c)

        def up(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=like.shape[-2:], mode="bilinear", align_corners=False)

        c = self.d2(torch.cat([up(d, c), c], 1))
        b = self.d1(torch.cat([up(c, b), b], 1))
        a = self.d0(torch.cat([up(b, a), a], 1))
        return F.pixel_shuffle(self.out(a), BLOCK)


@dataclass
class SegmenterBatch:
    image: torch.Tensor  # N×3×R×R
    label: torch.Tensor  # N×1×R×R
    region: torch.Tensor  # N×1×R×R where the loss looks (the grown face oval)


def make_batch(
    faces: SegmenterFaces, index: np.ndarray, rng: np.random.Generator, no_occluder: float,
    occluders: str = "basic",
) -> SegmenterBatch:  # fmt: skip
    imgs, labels = zip(
        *(occluded_sample(faces, int(i), rng, no_occluder, occluders) for i in index), strict=True
    )
    x = np.stack(imgs).astype(np.float32) / 255.0
    y = np.stack(labels)
    oval = faces.ovals[index].astype(np.float32) / 255.0
    region = np.stack([cv2.dilate(o, np.ones((17, 17), np.uint8)) for o in oval])
    flip = rng.random(len(index)) < 0.5
    x[flip], y[flip], region[flip] = x[flip, :, ::-1], y[flip, :, ::-1], region[flip, :, ::-1]
    x = np.clip(
        x * rng.uniform(0.8, 1.2, (len(index), 1, 1, 1)) + rng.uniform(-0.08, 0.08, (len(index), 1, 1, 1)),
        0,
        1,
    )
    return SegmenterBatch(
        torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32)),
        torch.from_numpy(np.ascontiguousarray(y[:, None])),
        torch.from_numpy(np.ascontiguousarray(region[:, None])),
    )


def segmentation_loss(
    logits: torch.Tensor, label: torch.Tensor, region: torch.Tensor
) -> dict[str, torch.Tensor]:
    bce = F.binary_cross_entropy_with_logits(logits, label, reduction="none")
    bce = (bce * region).sum() / region.sum().clamp_min(1.0)
    p = torch.sigmoid(logits) * region
    inter = (p * label).sum((1, 2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + (label * region).sum((1, 2, 3)) + 1)
    return {"bce": bce, "dice": dice.mean()}


def iou_and_recall(prob: np.ndarray, label: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    """IoU and recall of the occluder (prob > ½ vs label) inside ``region``, over a whole set."""
    pred, lab = (prob > 0.5) & region, (label > 0.5) & region
    inter = float((pred & lab).sum())
    union = float((pred | lab).sum())
    return (inter / union if union else 1.0), (inter / float(lab.sum()) if lab.any() else 1.0)


class SegmenterTask(TrainTask):
    name: ClassVar[str] = "segmenter"
    changeable: ClassVar[tuple[str, ...]] = ("data", "occluders")
    added_defaults: ClassVar[dict[str, Any]] = {"turned": 0.0}  # runs from before --turned

    def __init__(
        self, config: SegmenterTrainConfig, seed: int = 0, faces: SegmenterFaces | None = None
    ) -> None:
        self.cfg = config
        self.seed = int(seed)
        self.faces = faces
        self.net: SegmenterNet | None = None
        self._opt: dict[str, torch.optim.Optimizer] = {}
        self._draw: np.ndarray | None = None  # each face's chance to be drawn (with ``turned``)

    def use_data(self, faces: SegmenterFaces) -> None:
        self.faces = faces
        self._draw = None

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def build(self, device: torch.device) -> None:
        self.net = SegmenterNet(self.cfg.model).to(device)
        self._opt = {"main": torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr, betas=(0.9, 0.99))}
        log.info("segmenter: %d parameters", parameter_count(self.net))

    def modules(self) -> dict[str, nn.Module]:
        assert self.net is not None
        return {"segmenter": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def batch(self, step: int) -> SegmenterBatch:
        assert self.faces is not None
        rng = np.random.default_rng([self.seed, step])
        return make_batch(self.faces, self.draw(rng), rng, self.cfg.no_occluder, self.cfg.occluders)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """The faces of one batch: uniformly, or with ``turned`` the turned ones more often."""
        assert self.faces is not None
        if not self.cfg.turned:
            return rng.integers(0, len(self.faces), self.cfg.batch_size)
        if self._draw is None:
            w = 1.0 + self.cfg.turned * turn_asymmetry(self.faces.landmarks)
            self._draw = w / w.sum()
        return rng.choice(len(self.faces), self.cfg.batch_size, p=self._draw)

    def train_step(self, batch: SegmenterBatch, ctx: StepContext) -> dict[str, float]:
        assert self.net is not None
        with ctx.autocast():
            terms = segmentation_loss(
                self.net(batch.image.to(ctx.device)), batch.label.to(ctx.device), batch.region.to(ctx.device)
            )
            total = terms["bce"] + terms["dice"]
        ctx.backward_step(total, "main")
        return {**{k: float(v.detach()) for k, v in terms.items()}, "total": float(total.detach())}

    @torch.no_grad()
    def predict(self, images: np.ndarray, device: torch.device) -> np.ndarray:
        """Occlusion probabilities (N×R×R) of face crops (N×R×R×3 uint8)."""
        assert self.net is not None
        was = self.net.training
        self.net.eval()
        x = torch.from_numpy(images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0).to(device)
        out = torch.sigmoid(self.net(x)).cpu().numpy()[:, 0]
        self.net.train(was)
        return out

    def preview(self, device: torch.device) -> np.ndarray:
        assert self.faces is not None
        rng = np.random.default_rng(12345)
        idx = np.arange(min(6, len(self.faces)))
        b = make_batch(self.faces, idx, rng, 0.0, self.cfg.occluders)
        img = (b.image.numpy().transpose(0, 2, 3, 1) * 255).astype(np.uint8)
        prob = self.predict(img, device)
        grey = lambda a: np.repeat(a[:, None], 3, 1)  # noqa: E731
        return preview_grid(
            [("input", b.image), ("label", grey(b.label.numpy()[:, 0])), ("predicted", grey(prob))]
        )


SEGMENTER_FORMAT = "masquerade-occlusion"
SEGMENTER_ONNX = "segmenter.onnx"


def export_segmenter_state(out: Path, state: dict[str, Any], opset: int = 17) -> Any:
    """``OUT/segmenter.onnx`` (input ``image`` N×3×R×R RGB in [0, 1], the face crop; output ``occlusion``
    N×1×R×R logits) and ``OUT/model.json`` (format ``masquerade-occlusion``)."""
    from .configs import SegmenterTrainConfig
    from .export import _trained, _write_model, onnx_bytes, onnx_difference

    cfg = SegmenterTrainConfig.from_dict(
        {k: v for k, v in state["config"].items() if k not in ("trainer", "seed")}
    )
    net = SegmenterNet(cfg.model)
    net.load_state_dict(state["modules"]["segmenter"])
    net.eval()
    r = cfg.resolution
    data = onnx_bytes(net, (torch.full((1, 3, r, r), 0.5),), ("image",), ("occlusion",), opset)
    x = np.random.default_rng(0).random((2, 3, r, r), dtype=np.float32)
    diff = onnx_difference(net, data, {"image": x}, ("occlusion",))
    meta = {
        "format": SEGMENTER_FORMAT, "version": 1, "resolution": r, "template": "refine",
        "onnx": SEGMENTER_ONNX, "sha256": "", "inputs": ["image"], "outputs": ["occlusion"],
        "steps": int(state["step"]), "data": {"folders": list(cfg.data), "holdout": cfg.holdout},
        "config": cfg.to_dict(), "parameters": parameter_count(net), "trained": _trained(state),
    }  # fmt: skip
    return _write_model(out, data, diff, meta)
