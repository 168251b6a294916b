"""Fuzz the video loaders (``masquerade.video.probe``, ``.transcode``) with atheris (libFuzzer for Python).

    python fuzz/fuzz_video_loader.py -atheris_runs=5000 -timeout=30 -rss_limit_mb=3072 CORPUS_DIR [SEEDS_DIR]
    python fuzz/fuzz_video_loader.py crash-1234abcd          # replay one input

Each input's bytes are written to a temporary file (suffix from ``FUZZ_VIDEO_SUFFIX``, default
``.mp4``) and read with ``probe`` and ``iter_frames`` (at most ``FUZZ_MAX_FRAMES`` frames, default
60); unless ``FUZZ_TRANSCODE=0``, it is then also run through ``transcode`` (decode → identity →
H.264 encode, audio copied, the path the ``swap`` command takes) into a scratch folder. The only
acceptable failure is :class:`masquerade.InputError`; any other exception, a crash, a hang past
``-timeout``, memory past ``-rss_limit_mb``, a frame that is not upright 8-bit RGB, an output left
behind by a failed transcode, a temporary file left behind, or a modified input is a finding.
See fuzz/README.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["masquerade", "av"]):
    from masquerade.errors import InputError
    from masquerade.video.probe import iter_frames, probe
    from masquerade.video.transcode import EncodeOptions, transcode

MAX_FRAMES = int(os.environ.get("FUZZ_MAX_FRAMES", "60"))
TRANSCODE = os.environ.get("FUZZ_TRANSCODE", "1") != "0"
SUFFIX = os.environ.get("FUZZ_VIDEO_SUFFIX", ".mp4")
_DIR = Path(tempfile.mkdtemp(prefix="masquerade-fuzz-video-"))
_PATH = _DIR / f"input{SUFFIX}"
_OUT_DIR = _DIR / "out"
_OUT_DIR.mkdir()
_ENCODE = EncodeOptions(codec="libx264", crf=35, preset="ultrafast", end=2.0)


def check_frame(rgb, t: float) -> None:
    assert rgb.dtype.name == "uint8" and rgb.ndim == 3 and rgb.shape[2] == 3, (rgb.dtype, rgb.shape)
    assert rgb.shape[0] > 0 and rgb.shape[1] > 0, rgb.shape
    assert isinstance(t, float), type(t)


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    digest = hashlib.sha256(data).digest()
    try:
        info = probe(_PATH)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc).replace(str(_PATH), ""), repr(str(exc))
        info = None
    if info is not None:
        assert info.width >= 0 and info.height >= 0 and info.fps > 0, info
        frames = iter_frames(_PATH)
        try:
            for i, (rgb, t) in enumerate(frames):
                check_frame(rgb, t)
                if i + 1 >= MAX_FRAMES:
                    break
        except InputError:
            pass
        finally:
            frames.close()
        if TRANSCODE:
            out = _OUT_DIR / "out.mp4"
            try:
                stats = transcode(_PATH, out, lambda rgb, t: rgb, _ENCODE)
            except InputError:
                assert not out.exists(), "a failed transcode left its output"
            else:
                assert out.is_file() and stats.frames_out > 0, stats
            left = [p.name for p in _OUT_DIR.iterdir() if p.name != "out.mp4"]
            assert not left, f"temporary files left behind: {left}"
            shutil.rmtree(_OUT_DIR)
            _OUT_DIR.mkdir()
    assert hashlib.sha256(_PATH.read_bytes()).digest() == digest, "the input file was modified"


def main() -> None:
    logging.disable(logging.CRITICAL)  # the library's warnings about damaged inputs are expected
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
