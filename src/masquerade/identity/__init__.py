"""Identity: dlib's 128-d face embedding and comparisons.

:mod:`.encoder` computes embeddings (onnxruntime or dlib); :mod:`.dlibnet` reads dlib's serialized
network, :mod:`.onnx_net` rebuilds it as an ONNX graph and :mod:`.torch_net` as a differentiable
PyTorch module (training only; needs PyTorch).
"""

from __future__ import annotations

from .encoder import SAME_PERSON_DISTANCE, IdentityEncoder, cosine_similarity, euclidean_distance

__all__ = ["SAME_PERSON_DISTANCE", "IdentityEncoder", "cosine_similarity", "euclidean_distance"]
