"""Fuzz ``masquerade.imageio.load_image`` with atheris (libFuzzer for Python).

    python fuzz/fuzz_image_loader.py -atheris_runs=20000 -timeout=20 -rss_limit_mb=3072 CORPUS_DIR [SEEDS_DIR]
    python fuzz/fuzz_image_loader.py crash-1234abcd          # replay one input

Each input's bytes are written to a temporary file (suffix from ``FUZZ_IMAGE_SUFFIX``, default
``.png``; the loader sniffs the content, not the name) and loaded. The only acceptable failure is
:class:`masquerade.InputError` (a one-line message); any other exception, a crash, a hang past
``-timeout`` or memory past ``-rss_limit_mb`` is a finding. A loaded image must be 8-bit RGB,
C-contiguous, at least 8x8, within ``max_pixels``, with an alpha plane of the same size or none, and
the input file must be left unchanged. See fuzz/README.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["PIL", "masquerade"]):
    from PIL import Image

    from masquerade.errors import InputError
    from masquerade.imageio import load_image

    Image.init()  # import every format plugin now, so that they are instrumented too

# Small enough that a fuzzed header cannot make one input take seconds; the size check itself is
# what is under test, not the decoders' speed on 50 MP.
MAX_PIXELS = int(os.environ.get("FUZZ_MAX_PIXELS", "4000000"))
SUFFIX = os.environ.get("FUZZ_IMAGE_SUFFIX", ".png")
_DIR = Path(tempfile.mkdtemp(prefix="masquerade-fuzz-image-"))
_PATH = _DIR / f"input{SUFFIX}"


def check_loaded(img, max_pixels: int) -> None:
    rgb, alpha = img.rgb, img.alpha
    assert rgb.dtype.name == "uint8" and rgb.ndim == 3 and rgb.shape[2] == 3, (rgb.dtype, rgb.shape)
    assert rgb.flags["C_CONTIGUOUS"], "rgb is not contiguous"
    h, w = rgb.shape[:2]
    assert h >= 8 and w >= 8, (w, h)
    assert w * h <= max_pixels, (w, h, max_pixels)
    if alpha is not None:
        assert alpha.dtype.name == "uint8" and alpha.shape == (h, w), (alpha.dtype, alpha.shape)


def test_one_input(data: bytes) -> None:
    _PATH.write_bytes(data)
    digest = hashlib.sha256(data).digest()
    try:
        img = load_image(_PATH, max_pixels=MAX_PIXELS)
    except InputError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg.replace(str(_PATH), ""), f"error is not one line: {msg!r}"
    else:
        check_loaded(img, MAX_PIXELS)
    assert hashlib.sha256(_PATH.read_bytes()).digest() == digest, "the input file was modified"


def main() -> None:
    logging.disable(logging.CRITICAL)  # the library's warnings about damaged inputs are expected
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
