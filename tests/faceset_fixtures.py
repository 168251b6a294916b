"""Small facesets in the ``masquerade-faceset`` v1 format, made from the bundled sample photos.

Each face is one analysis of the photo plus a few jittered copies (a known similarity transform and a
brightness/contrast change of the whole photo, landmarks and mesh moved along), aligned with the
``ffhq`` template like ``masquerade.faceset.extract`` does. Fast: the photo is analysed once.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from masquerade.analysis.alignment import align_face
from masquerade.compose.masks import region_mask
from masquerade.face import Face


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts[:, :2] @ m[:, :2].T + m[:, 2]


def make_faceset(
    out: Path, rgb: np.ndarray, face: Face, copies: int = 6, size: int = 96, seed: int = 0, source: str = "x"
) -> Path:
    """Write ``copies`` faces of ``face`` (found in ``rgb``) as a faceset in ``out``; returns ``out``."""
    rng = np.random.default_rng(seed)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    h, w = rgb.shape[:2]
    cx, cy = face.center
    records = []
    for k in range(copies):
        angle = 0.0 if k == 0 else rng.uniform(-8, 8)
        scale = 1.0 if k == 0 else rng.uniform(0.95, 1.05)
        t = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, scale)
        if k:
            t[:, 2] += rng.uniform(-10, 10, 2)
        img = cv2.warpAffine(rgb, t, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if k:
            gain, bias = rng.uniform(0.85, 1.15), rng.uniform(-15, 15)
            img = np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        lm5 = _apply(t, face.landmarks_5)
        crop, m = align_face(img, lm5, size, "ffhq")
        full = np.vstack([m, [0, 0, 1]]) @ np.vstack([t, [0, 0, 1]])
        mesh = face.mesh.copy()
        mesh[:, :2] = _apply(full[:2], face.mesh)
        mesh[:, 2] *= abs(np.linalg.det(full[:2, :2])) ** 0.5
        mask = region_mask((size, size), mesh, "face", erode=0.0, blur=0.02)
        fid = f"{k:06d}"
        cv2.imwrite(str(out / "faces" / f"{fid}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(out / "faces" / f"{fid}_mask.png"), np.rint(mask * 255).astype(np.uint8))
        corners = np.array([[face.box[0], face.box[1]], [face.box[2], face.box[3]]])
        box = _apply(t, corners).reshape(-1)
        pose = None if face.pose is None else {k2: round(float(v), 2) for k2, v in vars(face.pose).items()}
        records.append(
            {
                "id": fid, "image": f"faces/{fid}.png", "mask": f"faces/{fid}_mask.png",
                "source": source, "frame": None, "time": None,
                "matrix": np.round(full[:2], 6).tolist(), "box": np.round(box, 1).tolist(),
                "landmarks_5": np.round(_apply(full[:2], face.landmarks_5), 2).tolist(),
                "landmarks_68": np.round(_apply(full[:2], face.landmarks_68), 2).tolist(),
                "pose": pose, "blur": 100.0, "face_px": round(float(np.sqrt(face.area)), 1),
                "identity_distance": None,
            }
        )  # fmt: skip
    doc = {
        "format": "masquerade-faceset",
        "version": 1,
        "size": size,
        "template": "ffhq",
        "created": "2026-01-01T00:00:00Z",
        "tool": "tests/faceset_fixtures.py",
        "settings": {},
        "sources": [source],
        "faces": records,
        "summary": {},
        "rejected": {},
    }
    (out / "faceset.json").write_text(json.dumps(doc, indent=1), "utf-8")
    return out
