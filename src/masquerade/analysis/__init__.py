"""Analysis: what is in a photo before anything is swapped.

Detection (:mod:`.detection`: mediapipe, MTCNN, dlib), landmarks (:mod:`.landmarks`: the 478-point mesh
and dlib's 68 points), pose and expression (:mod:`.geometry`), face regions (:mod:`.regions`), crop
alignment (:mod:`.alignment`), which faces to use (:mod:`.selection`) and the analyzer that turns an
image into :class:`~masquerade.face.Face` records (:mod:`.analyzer`).
"""

from __future__ import annotations

from .analyzer import AnalyzerOptions, FaceAnalyzer

__all__ = ["AnalyzerOptions", "FaceAnalyzer"]
