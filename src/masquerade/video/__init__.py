"""Video: reading (:mod:`.probe`), streaming decode → swap → encode with timing and audio
(:mod:`.transcode`), frame-by-frame output (:mod:`.writer`), face tracking (:mod:`.tracking`) and
smoothing (:mod:`.smoothing`), the frame-by-frame swapper (:mod:`.swap`), keyframe-cut segments
(:mod:`.segments`) and their encoded parts (:mod:`.parts`), live streams (:mod:`.live`) and stability
metrics (:mod:`.temporal`)."""

from __future__ import annotations

from typing import Any

__all__ = ["VideoFaceSwapper", "VideoOptions", "VideoReport", "swap_video"]


def __getattr__(name: str) -> Any:  # the swapper pulls in the analysis models: imported when asked for
    if name in __all__:
        from . import swap

        return getattr(swap, name)
    raise AttributeError(name)
