"""masquerade — offline face swapping.

Quick use::

    import masquerade
    faces = masquerade.analyze(masquerade.load_image("photo.jpg").rgb)
    out = masquerade.swap_image(source_rgb, target_rgb)

Images are RGB ``uint8`` arrays (H×W×3). Every model comes from an installed package.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .errors import InputError, MasqueradeError, ModelError, NoFaceError, OutputError

if TYPE_CHECKING:
    import numpy as np

    from .analysis.analyzer import AnalyzerOptions, FaceAnalyzer
    from .evaluation import evaluate, load_benchmark, write_report
    from .face import Face, Pose
    from .identity.encoder import cosine_similarity, euclidean_distance
    from .imageio import LoadedImage, load_image, save_image
    from .job import SwapJob, SwapRequest, prepare_job
    from .pipeline import FaceSwapper, SwapOptions, SwapReport, swap_image
    from .provenance.stamp import OutputStamp, ProvenanceOptions, ProvenanceRecord
    from .samples import sample_path

# The facade's names are imported on first use (PEP 562): a command-line run imports only what its
# command needs, not the evaluation suite, the provenance stack and numpy's plotting friends.
_LAZY = {
    "AnalyzerOptions": "analysis.analyzer",
    "FaceAnalyzer": "analysis.analyzer",
    "evaluate": "evaluation",
    "load_benchmark": "evaluation",
    "write_report": "evaluation",
    "Face": "face",
    "Pose": "face",
    "cosine_similarity": "identity.encoder",
    "euclidean_distance": "identity.encoder",
    "LoadedImage": "imageio",
    "load_image": "imageio",
    "save_image": "imageio",
    "SwapJob": "job",
    "SwapRequest": "job",
    "prepare_job": "job",
    "FaceSwapper": "pipeline",
    "SwapOptions": "pipeline",
    "SwapReport": "pipeline",
    "swap_image": "pipeline",
    "OutputStamp": "provenance.stamp",
    "ProvenanceOptions": "provenance.stamp",
    "ProvenanceRecord": "provenance.stamp",
    "sample_path": "samples",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'masquerade' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"


def analyze(rgb: np.ndarray, identity: bool = True, landmarks: str = "mediapipe") -> list[Face]:
    """Detect and analyse every face in an RGB image (loads the models each call)."""
    from .analysis.analyzer import FaceAnalyzer

    with FaceAnalyzer(identity=identity, landmarks=landmarks) as fa:
        return fa.get(rgb)


def save_swapped(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    swapper: str = "mesh3d",
    alpha: np.ndarray | None = None,
    quality: int = 95,
    provenance: ProvenanceOptions | None = None,
) -> ProvenanceRecord:
    """Write a swapped image the way ``masquerade swap`` does: watermarked and with a signed C2PA
    manifest (``provenance=ProvenanceOptions(enabled=False)`` turns both off and says so in the
    file's metadata). Atomic; returns what was put on it. :func:`save_image` writes plain pixels."""
    from .provenance.stamp import OutputStamp, ProvenanceOptions

    stamp = OutputStamp(swapper, provenance or ProvenanceOptions())
    stamp.write_image(path, rgb, alpha=alpha, quality=quality)
    return stamp.record


__all__ = [
    "AnalyzerOptions",
    "Face",
    "FaceAnalyzer",
    "FaceSwapper",
    "InputError",
    "LoadedImage",
    "MasqueradeError",
    "ModelError",
    "NoFaceError",
    "OutputError",
    "OutputStamp",
    "Pose",
    "ProvenanceOptions",
    "ProvenanceRecord",
    "SwapJob",
    "SwapOptions",
    "SwapReport",
    "SwapRequest",
    "__version__",
    "analyze",
    "cosine_similarity",
    "euclidean_distance",
    "evaluate",
    "load_benchmark",
    "load_image",
    "prepare_job",
    "sample_path",
    "save_image",
    "save_swapped",
    "swap_image",
    "write_report",
]
