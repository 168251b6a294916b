"""The model registry: every model masquerade uses, where it comes from, its licence and checksum.

All default models ship inside installed packages; nothing is downloaded at run time. Paths are
resolved from the installed package each time they are asked for (no cached global state).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # detector | landmarks | identity | geometry | occlusion | swapper
    package: str  # installed Python package that holds the file
    relpath: str  # path inside that package
    sha256: str
    licence: str
    origin: str

    def path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"model {self.name}: package {self.package!r} is not installed")
        p = Path(next(iter(spec.submodule_search_locations))) / self.relpath
        if not p.is_file():
            raise ModelError(f"model {self.name}: file {p} is missing from package {self.package}")
        return p

    def verify(self) -> bool:
        return file_sha256(self.path()) == self.sha256


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_MP = "Apache-2.0 (Google MediaPipe)"
_DLIB = "CC0-1.0 (Davis King, dlib models via face-recognition-models)"
_OURS_CELEBA = "non-commercial research only (this project; trained on CelebA, whose licence says so)"

REGISTRY: tuple[ModelSpec, ...] = (
    ModelSpec(
        "mediapipe-face-detection-short",
        "detector",
        "mediapipe",
        "modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        _MP,
        "BlazeFace short-range, mediapipe==0.10.21 wheel",
    ),
    ModelSpec(
        "mediapipe-face-detection-full",
        "detector",
        "mediapipe",
        "modules/face_detection/face_detection_full_range_sparse.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        _MP,
        "BlazeFace full-range (sparse), mediapipe==0.10.21 wheel",
    ),
    ModelSpec(
        "mediapipe-face-mesh",
        "landmarks",
        "mediapipe",
        "modules/face_landmark/face_landmark_with_attention.tflite",
        "e06a804e0144f9929eda782122916b35d60c697c3c9344013ca2bbe76a6ce2b4",
        _MP,
        "Face Mesh with attention (478 points incl. iris), mediapipe==0.10.21 wheel",
    ),
    ModelSpec(
        "dlib-68",
        "landmarks",
        "face_recognition_models",
        "models/shape_predictor_68_face_landmarks.dat",
        "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
        _DLIB,
        "dlib 68-point shape predictor (iBUG 300-W), face-recognition-models 0.3.0",
    ),
    ModelSpec(
        "dlib-5",
        "landmarks",
        "face_recognition_models",
        "models/shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        _DLIB,
        "dlib 5-point shape predictor, face-recognition-models 0.3.0",
    ),
    ModelSpec(
        "dlib-resnet-128",
        "identity",
        "face_recognition_models",
        "models/dlib_face_recognition_resnet_model_v1.dat",
        "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        _DLIB,
        "dlib ResNet-29 face recognition, 128-d (LFW 99.38 % published), face-recognition-models 0.3.0",
    ),
    ModelSpec(
        "dlib-mmod",
        "detector",
        "face_recognition_models",
        "models/mmod_human_face_detector.dat",
        "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
        _DLIB,
        "dlib MMOD CNN face detector, face-recognition-models 0.3.0",
    ),
    ModelSpec(
        "masquerade-canonical-mesh",
        "geometry",
        "masquerade",
        "data/canonical_mesh.npz",
        "49596b3f26ac669e6f6997a8998a375902d48a513adafb16e03858772812e3f9",
        "Apache-2.0 (this project)",
        "mean pose-normalised 478-point mesh built by scripts/build_canonical_mesh.py from LFW",
    ),
    ModelSpec(
        "masquerade-occlusion",
        "occlusion",
        "masquerade",
        "data/models/occlusion/segmenter.onnx",
        "fb815b0adf213d8a3c84be9dde181cdaa519287dd63ad3c2d371646a3e7781cf",
        _OURS_CELEBA,
        "face-occlusion segmenter trained by this project (masquerade train segmenter; MODEL_CARD.md)",
    ),
    ModelSpec(
        "masquerade-refiner",
        "swapper",
        "masquerade",
        "data/models/refiner/refiner.onnx",
        "9be1903d72d28105ef5212ec1af0154f18f90e6b671fe6871ee7618123385d7f",
        _OURS_CELEBA,
        "the refined swapper's correction network, trained by this project (masquerade train refiner)",
    ),
)


def get_model(name: str) -> ModelSpec:
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise ModelError(f"unknown model {name!r}; known: {', '.join(s.name for s in REGISTRY)}")
