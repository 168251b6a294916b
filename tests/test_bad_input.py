"""The bad-input contract of ``masquerade swap`` and ``masquerade analyze``.

Every refusal is ONE line on stderr starting with ``error:``, a non-zero exit status, no traceback,
no output file (nor a leftover ``.NAME.*.part`` temporary file) and inputs left byte-for-byte
unchanged. Unusual but valid inputs (alpha, grayscale, 16-bit, EXIF-rotated) are swapped correctly.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from masquerade import sample_path
from masquerade.cli.main import main

ASTRONAUT = sample_path("astronaut")
HOPPER = sample_path("grace_hopper")
ADVICE = "warning: the source wears glasses"  # said on every swap from Grace Hopper (her glasses)


def input_warnings(stderr: str) -> list[str]:
    """The ``warning:`` lines of ``stderr`` but the advice about Grace Hopper's glasses: what the command
    says about its input files."""
    return [ln for ln in stderr.splitlines() if ln.startswith("warning:") and not ln.startswith(ADVICE)]


# The astronaut's face box is about x 180-272, y 70-178; this margin-padded box contains it.
FACE_REGION = (slice(10, 240), slice(120, 335))
FACE_BOX = (slice(70, 178), slice(180, 272))


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASQUERADE_DEBUG", raising=False)


# ---------------------------------------------------------------- helpers


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(*folders: Path) -> dict[str, str]:
    """Name -> hash of every file in ``folders`` (detects new, removed, changed and temp files)."""
    return {
        str(p): sha256(p) if p.is_file() else "<dir>" for folder in folders for p in sorted(folder.iterdir())
    }


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def assert_one_line_error(code: int, err: str, *needles: str, exit_code: int | None = None) -> str:
    assert code != 0, err
    if exit_code is not None:
        assert code == exit_code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert line.startswith("error:"), line
    for needle in needles:
        assert needle.lower() in line.lower(), line
    return line


def swap_fails(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    source: Path | str,
    target: Path | str,
    *needles: str,
    output: Path | None = None,
    extra: tuple[str, ...] = (),
    exit_code: int | None = None,
) -> str:
    """Run a swap that must be refused; check the whole contract and return the error line."""
    output = output or tmp_path / "out" / "result.png"
    output.parent.mkdir(exist_ok=True)
    before = snapshot(tmp_path, output.parent)
    code, _, err = run(capsys, "swap", "-s", source, "-t", target, "-o", output, *extra)
    line = assert_one_line_error(code, err, *needles, exit_code=exit_code)
    assert snapshot(tmp_path, output.parent) == before, "files were created, changed or left behind"
    return line


def swap_ok(
    capsys: pytest.CaptureFixture[str], source: Path | str, target: Path, output: Path
) -> Image.Image:
    """Run a swap that must succeed; the target is unchanged and the output a decodable image."""
    target_hash = sha256(target)
    code, _, err = run(capsys, "swap", "-s", source, "-t", target, "-o", output)
    assert code == 0, err
    assert "Traceback" not in err
    assert sha256(target) == target_hash
    assert not list(output.parent.glob(f".{output.name}.*.part"))
    with Image.open(output) as im:
        im.load()
        return im.copy()


def astronaut_rgb() -> np.ndarray:
    with Image.open(ASTRONAUT) as im:
        return np.asarray(im.convert("RGB"))


def write_png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode).save(path, format="PNG") if mode else Image.fromarray(arr).save(path, "PNG")
    return path


def huge_png(path: Path, width: int = 60_000, height: int = 60_000) -> Path:
    """A real small PNG whose IHDR is patched to declare ``width`` x ``height`` (CRC fixed)."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def make_bad_input(kind: str, tmp_path: Path) -> Path:
    """Write one kind of bad input file under ``tmp_path`` and return its path."""
    rng = np.random.default_rng(0)
    if kind == "missing":
        return tmp_path / "does-not-exist.jpg"
    if kind == "directory":
        (tmp_path / "folder.jpg").mkdir()
        return tmp_path / "folder.jpg"
    if kind == "empty":
        (tmp_path / "empty.jpg").write_bytes(b"")
        return tmp_path / "empty.jpg"
    if kind == "text":
        (tmp_path / "notes.jpg").write_text("this is not a photo\n" * 20)
        return tmp_path / "notes.jpg"
    if kind == "garbled_png":
        good = io.BytesIO()
        Image.fromarray(astronaut_rgb()).save(good, "PNG")
        head = good.getvalue()[:33]  # signature + complete IHDR chunk
        (tmp_path / "garbled.png").write_bytes(head + rng.bytes(20_000))
        return tmp_path / "garbled.png"
    if kind == "huge_png":
        return huge_png(tmp_path / "huge.png")
    raise AssertionError(kind)


def good_copy(tmp_path: Path, name: str = "astronaut.png", sample: Path = ASTRONAUT) -> Path:
    """A private copy of a sample (PNG/JPEG re-encode or byte copy for .jpg)."""
    dst = tmp_path / name
    if dst.suffix == ".jpg":
        dst.write_bytes(sample.read_bytes())
    else:
        with Image.open(sample) as im:
            im.convert("RGB").save(dst)
    return dst


# ---------------------------------------------------------------- unreadable inputs

BAD_INPUTS = {
    "missing": "no such file",
    "directory": "directory",
    "empty": "empty",
    "text": "not a readable image",
    "garbled_png": "",
    "huge_png": "limit",
}


@pytest.mark.parametrize("role", ["source", "target"])
@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_unreadable_input(kind: str, role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = make_bad_input(kind, tmp_path)
    good = good_copy(tmp_path)
    src, tgt = (bad, good) if role == "source" else (good, bad)
    line = swap_fails(capsys, tmp_path, src, tgt, BAD_INPUTS[kind], exit_code=2)
    assert bad.name in line


@pytest.mark.parametrize(
    ("size", "extra", "needles"),
    [
        # 3.6 GP: past Pillow's hard decompression-bomb limit (~179 MP), refused at Image.open
        pytest.param((60_000, 60_000), (), ("over the 50 MP limit", "--max-pixels"), id="3600MP"),
        # 100 MP: past Pillow's bomb *warning* (~89 MP); our own header check must report it
        pytest.param((10_000, 10_000), (), ("10000x10000", "over the 50 MP limit"), id="100MP"),
        # --max-pixels raised past Pillow's hard limit: say which limit still applies
        pytest.param((60_000, 60_000), ("--max-pixels", "9000000000"), ("decompression-bomb",), id="raised"),
    ],
)
def test_huge_png_mentions_pixel_limit(
    size: tuple[int, int],
    extra: tuple[str, ...],
    needles: tuple[str, ...],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = huge_png(tmp_path / "huge.png", *size)
    swap_fails(capsys, tmp_path, ASTRONAUT, bad, "huge.png", *needles, extra=extra, exit_code=2)


def test_over_max_pixels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, tgt = good_copy(tmp_path, "a.png"), good_copy(tmp_path, "h.png", HOPPER)
    swap_fails(
        capsys, tmp_path, src, tgt, "limit", "--max-pixels", extra=("--max-pixels", "1000"), exit_code=2
    )
    code, out, err = run(capsys, "analyze", src, "--max-pixels", "1000")
    assert_one_line_error(code, err, "limit", exit_code=2)
    assert out == ""


def test_truncated_jpeg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A truncated JPEG may decode partially; either a valid output or the clean error contract."""
    data = ASTRONAUT.read_bytes()
    trunc = tmp_path / "truncated.jpg"
    trunc.write_bytes(data[: int(len(data) * 0.4)])
    h = sha256(trunc)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "result.png"
    code, _, err = run(capsys, "swap", "-s", HOPPER, "-t", trunc, "-o", out)
    assert "Traceback" not in err
    assert sha256(trunc) == h
    assert not list(out_dir.glob(".*.part"))
    if code == 0:
        with Image.open(out) as im:
            assert im.size == (512, 512)
    else:
        assert_one_line_error(code, err)
        assert not out.exists()


# ---------------------------------------------------------------- no face


def gray_png(tmp_path: Path) -> Path:
    return write_png(tmp_path / "gray.png", np.full((300, 300, 3), 128, np.uint8))


def noise_png(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    return write_png(tmp_path / "noise.png", rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))


@pytest.mark.parametrize("role", ["source", "target"])
def test_no_face(role: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = gray_png(tmp_path) if role == "source" else noise_png(tmp_path)
    good = good_copy(tmp_path)
    src, tgt = (blank, good) if role == "source" else (good, blank)
    swap_fails(capsys, tmp_path, src, tgt, "no face", exit_code=3)


# ---------------------------------------------------------------- output path


@pytest.mark.parametrize("spelling", ["same", "dot", "dotdot", "symlink"])
def test_output_equals_input(
    spelling: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    tgt = good_copy(tmp_path, "target.png")
    output = {
        "same": tgt,
        "dot": Path("./target.png"),
        "dotdot": Path("sub/../target.png"),
        "symlink": tmp_path / "sub" / "link.png",
    }[spelling]
    if spelling == "symlink":
        output.symlink_to(tgt)
    before = snapshot(tmp_path, tmp_path / "sub")
    code, _, err = run(capsys, "swap", "-s", HOPPER, "-t", "target.png", "-o", output, "--force")
    assert_one_line_error(code, err, "overwrite the input", exit_code=2)
    assert snapshot(tmp_path, tmp_path / "sub") == before


def test_existing_output_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / "result.png"
    existing.write_bytes(b"precious")
    swap_fails(capsys, tmp_path, HOPPER, ASTRONAUT, "already exists", "--force", output=existing, exit_code=2)
    assert existing.read_bytes() == b"precious"


def test_existing_output_with_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    existing = tmp_path / "result.png"
    existing.write_bytes(b"precious")
    code, _, err = run(
        capsys, "swap", "-s", "sample:grace_hopper", "-t", "sample:astronaut", "-o", existing, "--force"
    )
    assert code == 0, err
    with Image.open(existing) as im:
        assert im.format == "PNG" and im.size == (512, 512)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]


@pytest.mark.parametrize("ext", [".gif", ".txt", ""])
def test_unsupported_output_extension(ext: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The source is garbage: the extension must be refused before any input is even read.
    garbage = make_bad_input("text", tmp_path)
    line = swap_fails(
        capsys,
        tmp_path,
        garbage,
        ASTRONAUT,
        "extension",
        output=tmp_path / "out" / f"result{ext}",
        exit_code=2,
    )
    assert "notes.jpg" not in line


def test_output_folder_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "swap", "-s", HOPPER, "-t", ASTRONAUT, "-o", tmp_path / "nope" / "result.png")
    assert_one_line_error(code, err, "does not exist", exit_code=2)
    assert snapshot(tmp_path) == before


def test_output_is_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out.png").mkdir()
    code, _, err = run(capsys, "swap", "-s", HOPPER, "-t", ASTRONAUT, "-o", tmp_path / "out.png", "--force")
    assert_one_line_error(code, err, "directory", exit_code=2)
    assert (tmp_path / "out.png").is_dir() and not any((tmp_path / "out.png").iterdir())


# ---------------------------------------------------------------- unusual but valid targets


def test_rgba_target_keeps_alpha(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rgb = astronaut_rgb()
    alpha = np.tile(np.linspace(64, 255, rgb.shape[1]).astype(np.uint8), (rgb.shape[0], 1))
    alpha[:40, :40] = 0
    tgt = write_png(tmp_path / "rgba.png", np.dstack([rgb, alpha]), "RGBA")
    im = swap_ok(capsys, HOPPER, tgt, tmp_path / "out.png")
    assert im.mode == "RGBA" and im.size == (512, 512)
    np.testing.assert_array_equal(np.asarray(im.getchannel("A")), alpha)
    face = np.asarray(im.convert("RGB"))[FACE_BOX].astype(int)
    assert np.abs(face - rgb[FACE_BOX]).mean() > 5, "the face was not swapped"


def test_grayscale_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tgt = tmp_path / "gray.png"
    Image.fromarray(astronaut_rgb()).convert("L").save(tgt)
    assert Image.open(tgt).mode == "L"
    im = swap_ok(capsys, HOPPER, tgt, tmp_path / "out.png")
    assert im.size == (512, 512)


def test_16bit_grayscale_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gray = np.asarray(Image.fromarray(astronaut_rgb()).convert("L")).astype(np.uint16) * 257
    tgt = tmp_path / "gray16.png"
    Image.fromarray(gray).save(tgt)
    data = tgt.read_bytes()
    assert (data[24], data[25]) == (16, 0), "not a 16-bit grayscale PNG"
    im = swap_ok(capsys, HOPPER, tgt, tmp_path / "out.png")
    assert im.size == (512, 512)
    # 16-bit levels must be scaled down, not clipped: the background stays close to the original.
    out = np.asarray(im.convert("L")).astype(int)
    mask = np.ones(out.shape, bool)
    mask[FACE_REGION] = False
    assert np.abs(out - (gray // 257))[mask].mean() < 4


def test_16bit_rgb_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rgb = astronaut_rgb()
    tgt = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(tgt), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR).astype(np.uint16) * 257)
    data = tgt.read_bytes()
    assert (data[24], data[25]) == (16, 2), "not a 16-bit RGB PNG"
    im = swap_ok(capsys, HOPPER, tgt, tmp_path / "out.png")
    assert im.size == (512, 512)
    out = np.asarray(im.convert("RGB")).astype(int)
    mask = np.ones(out.shape[:2], bool)
    mask[FACE_REGION] = False
    assert np.abs(out - rgb)[mask].mean() < 2, "colours or channel order changed"


def test_exif_rotated_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    upright = astronaut_rgb()
    stored = np.ascontiguousarray(np.rot90(upright))  # 90° counter-clockwise on disk
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": undoes the rotation above
    tgt = tmp_path / "rotated.jpg"
    Image.fromarray(stored).save(tgt, "JPEG", quality=95, exif=exif.tobytes())

    def mad(a: np.ndarray, b: np.ndarray) -> float:
        mask = np.ones(a.shape[:2], bool)
        mask[FACE_REGION] = False
        return float(np.abs(a.astype(int) - b.astype(int))[mask].mean())

    with Image.open(tgt) as im:
        assert im.getexif().get(0x0112) == 6
        assert mad(np.asarray(im.convert("RGB")), upright) > 20, "test image is not actually rotated"
        viewed = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert mad(viewed, upright) < 3, "Orientation 6 does not display the image upright"

    out = swap_ok(capsys, HOPPER, tgt, tmp_path / "out.png")
    assert out.size == (512, 512)
    assert mad(np.asarray(out.convert("RGB")), upright) < 4, "output is not upright"


# ---------------------------------------------------------------- analyze


def test_analyze_garbage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = make_bad_input("garbled_png", tmp_path)
    h = sha256(garbage)
    code, out, err = run(capsys, "analyze", garbage)
    assert_one_line_error(code, err, "garbled.png", exit_code=2)
    assert out == ""
    assert sha256(garbage) == h


def test_analyze_no_face(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = gray_png(tmp_path)
    code, out, err = run(capsys, "analyze", blank, "--no-identity")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["faces"] == [] and (doc["width"], doc["height"]) == (300, 300)


def test_analyze_annotate_refuses_input_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = good_copy(tmp_path)
    before = snapshot(tmp_path)
    code, out, err = run(capsys, "analyze", photo, "--annotate", tmp_path / "." / photo.name, "--force")
    assert_one_line_error(code, err, "overwrite the input", exit_code=2)
    assert out == "" and snapshot(tmp_path) == before


# ---------------------------------------------------------------- the real console script


def cli(*argv: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MASQUERADE_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "masquerade", *map(str, argv)],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    "case", ["text_source", "huge_target", pytest.param("no_face_target", marks=pytest.mark.slow)]
)
def test_console_script(case: str, tmp_path: Path) -> None:
    good = good_copy(tmp_path)
    if case == "text_source":
        src, tgt, needle, rc = make_bad_input("text", tmp_path), good, "not a readable image", 2
    elif case == "huge_target":
        src, tgt, needle, rc = good, huge_png(tmp_path / "huge.png"), "limit", 2
    else:
        src, tgt, needle, rc = good, noise_png(tmp_path), "no face", 3
    before = snapshot(tmp_path)
    proc = cli("swap", "-s", src.name, "-t", tgt.name, "-o", "result.png", cwd=tmp_path)
    assert proc.stdout == ""
    assert_one_line_error(proc.returncode, proc.stderr, needle, exit_code=rc)
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- unbounded and partial inputs


def limited_cli(*argv: object, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The console script with a time limit and a 3 GB address-space cap: a regression that reads
    without end (``/dev/zero``) or blocks (a FIFO) fails the test instead of taking the machine."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    env = {k: v for k, v in os.environ.items() if k != "MASQUERADE_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "masquerade", *map(str, argv)], capture_output=True, text=True, cwd=cwd,
        env=env, timeout=timeout, preexec_fn=cap, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _load_corpus_generator():
    import importlib.util

    name = "make_malformed_corpus"
    if name not in sys.modules:
        script = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up by name
        spec.loader.exec_module(module)
    return sys.modules[name]


def truncated_clip(path: Path) -> Path:
    """A 320x240 H.264 clip whose index (moov first) declares 78 frames, cut so that about half of
    them are left."""
    gen = _load_corpus_generator()
    data = gen.make_clip(gen.Ctx(0), frames=78, faststart=True, audio=False)
    path.write_bytes(gen.mdat_cut(data, 0.78))
    return path


def large_frame_clip(path: Path, size: tuple[int, int] = (4000, 3000), frames: int = 2) -> Path:
    """A real H.264 clip of ``frames`` flat frames of ``size`` (12 MP by default), small and quick."""
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "40", "preset": "ultrafast"}
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 100, np.uint8), format="rgb24")
        for _ in range(frames):
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def animated_gif(path: Path, frames: int = 3) -> Path:
    """An animation of the astronaut drifting right (GIF, or WebP by the extension)."""
    rgb = astronaut_rgb()
    images = [Image.fromarray(np.roll(rgb, 8 * i, axis=1)) for i in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, loop=0)
    return path


NOT_REGULAR = {
    "fifo": "FIFO (named pipe), not a regular file",
    "dev-zero": "character device, not a regular file",
    "link-to-dev-zero": "character device, not a regular file",
}


def not_regular(kind: str, folder: Path, name: str) -> Path:
    if kind == "fifo":
        os.mkfifo(folder / name)
        return folder / name
    if kind == "dev-zero":
        return Path("/dev/zero")
    (folder / name).symlink_to("/dev/zero")
    return folder / name


@pytest.mark.parametrize(
    ("kind", "role", "name"),
    [
        ("fifo", "target", "in.jpg"),
        ("fifo", "target", "in.mp4"),
        ("fifo", "source", "in.jpg"),
        ("fifo", "reference", "in.jpg"),
        ("dev-zero", "target", ""),
        ("dev-zero", "source", ""),
        ("link-to-dev-zero", "target", "zero.jpg"),
        ("link-to-dev-zero", "target", "zero.mp4"),
    ],
)
def test_input_not_a_regular_file(kind: str, role: str, name: str, tmp_path: Path) -> None:
    """A FIFO would block a read, /dev/zero never ends (the issue: ``-t /dev/zero`` took all memory):
    both are refused from their stat, in one line, before anything opens them."""
    bad = not_regular(kind, tmp_path, name)
    good = good_copy(tmp_path, "target.png")
    output = "result.mp4" if name.endswith(".mp4") else "result.png"
    if role == "target":
        argv = ["-s", HOPPER, "-t", bad]
    elif role == "source":
        argv = ["-s", bad, "-t", good]
    else:
        argv = ["-s", HOPPER, "-t", good, "--faces", "reference", "--reference", bad]
    before = snapshot(tmp_path)
    proc = limited_cli("swap", *argv, "-o", output, cwd=tmp_path)
    line = assert_one_line_error(proc.returncode, proc.stderr, NOT_REGULAR[kind], exit_code=2)
    assert str(bad.name) in line
    assert snapshot(tmp_path) == before, "files were created or left behind"


def test_image_file_size_checked_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file is read into memory only under the size limit that goes with --max-pixels (16 bytes a
    pixel + 16 MiB); a sparse 40 MB file is refused from its size alone."""
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(40_000_000)
    line = swap_fails(capsys, tmp_path, HOPPER, big, "big.png", "40.0 MB", extra=("--max-pixels", "1000"))
    assert "limit for images of up to 1,000 pixels" in line and "--max-pixels" in line


def test_small_pixel_limit_is_not_rounded_to_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tgt = good_copy(tmp_path, "a.png")
    line = swap_fails(capsys, tmp_path, HOPPER, tgt, extra=("--max-pixels", "1000"), exit_code=2)
    assert "512x512 (262,144 pixels), over the limit of 1,000 pixels" in line and "0 MP limit" not in line
    line = swap_fails(capsys, tmp_path, HOPPER, tgt, extra=("--max-pixels", "200000"), exit_code=2)
    assert "over the limit of 200,000 pixels" in line
    line = swap_fails(capsys, tmp_path, HOPPER, huge_png(tmp_path / "h.png", 1000, 2000),
                      extra=("--max-pixels", "1500000"), exit_code=2)  # fmt: skip
    assert "1000x2000 (2.0 MP), over the 1.5 MP limit" in line


@pytest.mark.parametrize("depth", ["afile/out.png", "afile/sub/out.png"])
def test_output_folder_is_a_file(depth: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_bytes(b"precious")
    before = snapshot(tmp_path)
    code, _, err = run(capsys, "swap", "-s", HOPPER, "-t", ASTRONAUT, "-o", tmp_path / depth)
    line = assert_one_line_error(code, err, "afile is a file, not a folder", exit_code=2)
    assert "does not exist" not in line
    assert snapshot(tmp_path) == before


def test_video_frames_over_max_pixels(tmp_path: Path) -> None:
    """--max-pixels applies to video frames, judged from the stream before any frame is decoded."""
    clip = large_frame_clip(tmp_path / "large.mp4")
    before = snapshot(tmp_path)
    proc = limited_cli("swap", "-s", HOPPER, "-t", clip.name, "-o", "out.mp4", "--max-pixels", "1000000",
                       cwd=tmp_path)  # fmt: skip
    needle = "video frames are 4000x3000 (12.0 MP), over the 1 MP limit"
    assert_one_line_error(proc.returncode, proc.stderr, "large.mp4", needle, "--max-pixels", exit_code=2)
    assert snapshot(tmp_path) == before


def test_video_frames_over_max_pixels_in_transcode(tmp_path: Path) -> None:
    """The library path (``swap_video``, as a batch worker calls it) refuses them too, before decoding."""
    from masquerade.errors import InputError
    from masquerade.video.transcode import transcode

    clip = large_frame_clip(tmp_path / "large.mp4", (1600, 1000), frames=1)
    calls: list[float] = []
    with pytest.raises(
        InputError, match="1600x1000 \\(1,600,000 pixels\\), over the limit of 1,234,567 pixels"
    ):
        transcode(clip, tmp_path / "out.mp4", lambda rgb, t: calls.append(t) or rgb, max_pixels=1_234_567)
    assert not calls and sorted(p.name for p in tmp_path.iterdir()) == ["large.mp4"]


def test_truncated_video_warns(tmp_path: Path) -> None:
    """A video with fewer frames than its container declares is swapped as far as it goes, with one
    warning line saying how many of how many."""
    clip = truncated_clip(tmp_path / "cut.mp4")
    proc = limited_cli(
        "swap", "-s", HOPPER, "-t", clip.name, "-o", "out.mp4", "--no-provenance", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = input_warnings(proc.stderr)
    assert len(warnings) == 1, proc.stderr
    assert re.fullmatch(r"warning: cut\.mp4 declares 78 frames but only \d+ could be read", warnings[0])
    n = int(warnings[0].split("only ")[1].split()[0])
    assert 20 < n < 78 and f"in {n} of {n} frames" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4", "out.mp4"]


def test_animated_target_warns(tmp_path: Path) -> None:
    """An animated GIF as the photo target: its first frame is swapped, and one warning line says so."""
    gif = animated_gif(tmp_path / "anim.gif")
    proc = limited_cli("swap", "-s", HOPPER, "-t", gif.name, "-o", "out.png", "--no-provenance", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    warnings = input_warnings(proc.stderr)
    assert warnings == ["warning: anim.gif has 3 frames; only the first frame was used"], proc.stderr
    with Image.open(tmp_path / "out.png") as im:
        assert im.size == (512, 512) and getattr(im, "n_frames", 1) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif", "out.png"]


def hopper_gif(path: Path, frames: int = 3) -> Path:
    """An animation of Grace Hopper drifting right (GIF, or WebP/TIFF by the extension)."""
    with Image.open(HOPPER) as im:
        rgb = np.asarray(im.convert("RGB"))
    images = [Image.fromarray(np.roll(rgb, 8 * i, axis=1)) for i in range(frames)]
    images[0].save(
        path, save_all=True, append_images=images[1:], **({"duration": 100} if path.suffix != ".tif" else {})
    )
    return path


def test_animated_source_and_reference_warn(tmp_path: Path) -> None:
    """An animated source and a multi-page reference are reduced to their first frame as the target is:
    one warning line each (the issue: silently), after the result's lines."""
    src = hopper_gif(tmp_path / "hopper.gif")
    ref = animated_gif(tmp_path / "ref.webp", frames=2)
    target = good_copy(tmp_path, "target.png")
    proc = limited_cli(
        "swap", "-s", src.name, "-t", target.name, "-o", "out.png", "--faces", "reference",
        "--reference", ref.name, "--no-provenance", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-2:] == [
        "warning: hopper.gif has 3 frames; only the first frame was used",
        "warning: ref.webp has 2 frames; only the first frame was used",
    ], proc.stderr
    assert len(input_warnings(proc.stderr)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hopper.gif", "out.png", "ref.webp", "target.png"]


def test_multipage_source_warns_once_in_a_batch(tmp_path: Path) -> None:
    """In a batch the source's warning is said once, at the end (not once per file)."""
    src = hopper_gif(tmp_path / "hopper.tif", frames=2)
    folder = tmp_path / "in"
    folder.mkdir()
    good_copy(folder, "a.png")
    good_copy(folder, "b.png")
    proc = limited_cli(
        "swap", "-s", src, "-t", folder, "-o", tmp_path / "out", "--no-provenance", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    warnings = input_warnings(proc.stderr)
    assert warnings == [f"warning: {src} has 2 frames; only the first frame was used"], proc.stderr


def test_single_frame_target_does_not_warn(tmp_path: Path) -> None:
    from masquerade import load_image
    from masquerade.imageio import frames_note

    gif = animated_gif(tmp_path / "still.gif", frames=1)
    assert load_image(gif).frames == 1 and frames_note(load_image(gif)) is None
    assert load_image(animated_gif(tmp_path / "anim.gif")).frames == 3


def test_batch_reports_partial_and_unreadable_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a batch: an animated WebP and the truncated video are done with a warning (in the report and
    on stderr), frames over --max-pixels and a FIFO fail with their one-line reasons, nothing hangs."""
    folder = tmp_path / "in"
    folder.mkdir()
    animated_gif(folder / "anim.webp")
    truncated_clip(folder / "cut.mp4")
    large_frame_clip(folder / "large.mp4", (1600, 1000), frames=1)
    os.mkfifo(folder / "pipe.jpg")
    out = tmp_path / "out"
    code, _, err = run(
        capsys, "swap", "-s", HOPPER, "-t", folder, "-o", out, "--no-provenance", "--max-pixels", "1000000"
    )
    assert code == 1, err
    report = json.loads((out / "batch-report.json").read_text())
    by_name = {Path(r["input"]).name: r for r in report["results"]}
    assert {n: r["status"] for n, r in by_name.items()} == {
        "anim.webp": "done", "cut.mp4": "done", "large.mp4": "failed", "pipe.jpg": "failed",
    }  # fmt: skip
    assert by_name["anim.webp"]["warning"].endswith("anim.webp has 3 frames; only the first frame was used")
    assert re.search(
        r"cut\.mp4 declares 78 frames but only \d+ could be read$", by_name["cut.mp4"]["warning"]
    )
    assert "video frames are 1600x1000 (1.6 MP), over the 1 MP limit" in by_name["large.mp4"]["error"]
    assert "FIFO (named pipe), not a regular file" in by_name["pipe.jpg"]["error"]
    assert by_name["large.mp4"]["warning"] is None and report["warnings"] == 2
    assert len(input_warnings(err)) == 2, err
    assert "2 with a warning" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["anim.webp", "batch-report.json", "cut.mp4"]
