"""Invisible watermark (masquerade.provenance.watermark): robustness, false positives, quality, video."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import lfw_image
from PIL import Image

from masquerade.provenance.watermark import (
    MIN_EMBED_SIDE,
    Watermarker,
    WatermarkPayload,
    _conv_encode,
    _message,
    _viterbi,
    detect_file,
    psnr,
)
from masquerade.video.transcode import EncodeOptions
from masquerade.video.writer import VideoWriter

PAYLOAD = WatermarkPayload(0x5EC0_DE12_3456)


def jpeg(rgb: np.ndarray, quality: int = 50) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def half(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


ATTACKS = {
    "none": lambda x: x,
    "jpeg50": jpeg,
    "half": half,
    "half+jpeg50": lambda x: jpeg(half(x)),
}


@pytest.fixture(scope="module")
def wm() -> Watermarker:
    return Watermarker()


@pytest.fixture(scope="module")
def lfw_or_samples(astronaut: np.ndarray, hopper: np.ndarray) -> list[np.ndarray]:
    """Unmarked photos of several sizes, each also halved with rounding and cropped by 1 px."""
    out = []
    for rgb in (astronaut, hopper, canvas(astronaut, 487, 500), canvas(hopper, 250, 250)):
        out += [rgb, cv2.resize(rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)]
        out.append(np.ascontiguousarray(rgb[1:-1, 1:-1]))
    return out


def canvas(astronaut: np.ndarray, w: int, h: int) -> np.ndarray:
    """The astronaut photo scaled to cover a w×h frame (centre crop)."""
    s = max(w / astronaut.shape[1], h / astronaut.shape[0])
    big = cv2.resize(astronaut, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.ascontiguousarray(big[y0 : y0 + h, x0 : x0 + w])


# ------------------------------------------------------------------------------------------- payload


def test_payload_helpers() -> None:
    assert WatermarkPayload.from_bytes(b"abc") == WatermarkPayload.from_bytes(b"abc")
    assert WatermarkPayload.from_bytes(b"abc") != WatermarkPayload.from_bytes(b"abd")
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert WatermarkPayload.from_uuid(u) == WatermarkPayload.from_uuid(str(u))
    assert 0 <= WatermarkPayload.random().content_id < 1 << 48
    assert WatermarkPayload.from_hex(PAYLOAD.hex) == PAYLOAD
    with pytest.raises(ValueError):
        WatermarkPayload(1 << 48)
    with pytest.raises(ValueError):
        WatermarkPayload(-1)
    with pytest.raises(TypeError):
        WatermarkPayload("12")  # type: ignore[arg-type]


def test_viterbi_corrects_noisy_symbols() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        msg = _message(int(rng.integers(0, 1 << 48)))
        code = 1.0 - 2.0 * _conv_encode(msg)
        assert np.array_equal(_viterbi(code + rng.normal(0.0, 0.7, code.size)), msg)


# ------------------------------------------------------------------------------------------- images


@pytest.mark.parametrize("name", ["astronaut", "hopper"])
def test_sample_photos_marked_survive_jpeg_and_resize(wm: Watermarker, name: str, request) -> None:
    rgb = request.getfixturevalue(name)
    marked = wm.embed(rgb, PAYLOAD)
    assert marked.shape == rgb.shape and marked.dtype == np.uint8
    assert not np.shares_memory(marked, rgb)
    assert psnr(rgb, marked) >= 40.0
    for attack, fn in ATTACKS.items():
        res = wm.detect(fn(marked))
        assert res.present, (name, attack, res)
        assert res.content_id == PAYLOAD.content_id, (name, attack, res)
        assert res.confidence >= 10.0 and res.p_value < 1e-20, (name, attack, res)
    clean = wm.detect(marked)
    assert clean.bit_errors is not None and clean.bit_errors <= 5
    assert "present" in clean.summary() and PAYLOAD.hex in clean.summary()


@pytest.mark.parametrize("name", ["astronaut", "hopper"])
def test_sample_photos_unmarked_not_detected(wm: Watermarker, name: str, request) -> None:
    rgb = request.getfixturevalue(name)
    for fn in ATTACKS.values():
        res = wm.detect(fn(rgb))
        assert not res.present and res.content_id is None and abs(res.confidence) < 4.5, res


@pytest.mark.parametrize(("w", "h"), [(1280, 720), (720, 1280), (1600, 400)])
def test_aspect_ratios(wm: Watermarker, astronaut: np.ndarray, w: int, h: int) -> None:
    rgb = canvas(astronaut, w, h)
    marked = wm.embed(rgb, PAYLOAD)
    assert psnr(rgb, marked) >= 40.0
    res = wm.detect(jpeg(half(marked)))
    assert res.present and res.content_id == PAYLOAD.content_id, res


def _odd(astronaut: np.ndarray) -> np.ndarray:
    return canvas(astronaut, 487, 500)


@pytest.mark.parametrize(
    "attack",
    [
        # OpenCV fx=0.5 and Pillow reduce(2) round 243.5 px up to 244 and keep the exact 0.5 scale
        lambda x: cv2.resize(x, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
        lambda x: np.asarray(Image.fromarray(x).reduce(2)),
        lambda x: x[1:-1, 1:-1],  # 1 px cropped off every edge
        lambda x: x[2:, :-2],  # 2 px off the top and the right
        lambda x: half(x[1:, 1:]),  # a 1 px crop, then halved
    ],
    ids=["half_fx", "half_pil_reduce", "crop1", "crop2_top_right", "crop1_then_half"],
)
def test_odd_sizes_rounded_resizes_and_small_crops_are_realigned(
    wm: Watermarker, astronaut: np.ndarray, attack
) -> None:
    """Issue 22: the mark lives in the whole frame's geometry; these moved it by a pixel or half of one
    and read 'absent' (z ≈ 5 for a 487×500 photo halved with fx=0.5) until detect() re-aligned."""
    rgb = _odd(astronaut)
    marked = wm.embed(rgb, PAYLOAD)
    attacked = np.ascontiguousarray(attack(marked))
    assert wm.detect(attacked, search=False).confidence < 6.0  # as it is, the geometry is off
    res = wm.detect(attacked)
    assert res.present and res.content_id == PAYLOAD.content_id and res.confidence >= 12.0, res
    assert res.alignment and res.alignments == 401 and "best of 401 alignments" in res.summary()
    assert res.p_value == pytest.approx(401 * 0.5 * math.erfc(res.confidence / math.sqrt(2)), rel=1e-6)
    unmarked = wm.detect(np.ascontiguousarray(attack(rgb)))
    assert not unmarked.present and unmarked.content_id is None and unmarked.confidence < 5.0, unmarked


def test_realignment_search_does_not_find_marks_in_unmarked_photos(wm: Watermarker, lfw_or_samples) -> None:
    """Best of 401 placements on unmarked photos: the z-score stays far below 6 (measured max 4.4 over
    800 LFW photos and their halves; BENCHMARKS.md)."""
    for rgb in lfw_or_samples:
        res = wm.detect(rgb)
        assert res.alignments == 401 and not res.present and res.content_id is None, res
        assert res.confidence < 5.0 and res.p_value > 1e-3, res


def test_larger_crops_are_a_stated_limit(wm: Watermarker, astronaut: np.ndarray) -> None:
    marked = wm.embed(_odd(astronaut), PAYLOAD)
    res = wm.detect(np.ascontiguousarray(marked[3:-3, 3:-3]))  # 3 px: beyond the search (README)
    assert not res.present


def test_gray_image_stays_gray(wm: Watermarker, hopper: np.ndarray) -> None:
    gray = np.repeat(cv2.cvtColor(hopper, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    marked = wm.embed(gray, PAYLOAD)
    assert np.array_equal(marked[..., 0], marked[..., 1]) and np.array_equal(marked[..., 1], marked[..., 2])
    assert wm.detect(jpeg(marked)).content_id == PAYLOAD.content_id


def test_flat_and_small_images(wm: Watermarker) -> None:
    flat = np.full((300, 400, 3), 128, np.uint8)
    res = wm.detect(flat)
    assert not res.present and abs(res.confidence) < 1e-6  # cancelling pilot pairs: exactly 0
    small = np.full((MIN_EMBED_SIDE - 1, 400, 3), 100, np.uint8)
    out = wm.embed_checked(small, PAYLOAD)
    assert not out.embedded and "minimum" in (out.reason or "")
    assert np.array_equal(out.rgb, small) and not np.shares_memory(out.rgb, small)
    tiny = wm.detect(np.zeros((10, 10, 3), np.uint8))
    assert not tiny.present and tiny.reason
    with pytest.raises(ValueError):
        wm.embed(np.zeros((300, 300, 3), np.float32), PAYLOAD)
    with pytest.raises(ValueError):
        wm.detect(np.zeros((300, 300), np.uint8))


def test_inplace(wm: Watermarker, hopper: np.ndarray) -> None:
    frame = hopper.copy()
    out = wm.embed(frame, PAYLOAD, inplace=True)
    assert out is frame and not np.array_equal(frame, hopper)
    assert np.array_equal(frame, wm.embed(hopper, PAYLOAD))


def test_embed_does_not_modify_input_and_accepts_views(wm: Watermarker, astronaut: np.ndarray) -> None:
    before = astronaut.copy()
    view = astronaut[:, ::-1]  # not contiguous
    marked = wm.embed(view, PAYLOAD)
    assert np.array_equal(astronaut, before)
    assert wm.detect(marked).content_id == PAYLOAD.content_id


@pytest.mark.slow  # LFW
@pytest.mark.lfw
def test_lfw_unmarked_not_detected_marked_detected(wm: Watermarker, lfw: Path) -> None:
    names = sorted(p.name for p in (lfw / "images").iterdir())[::115][:50]
    zs = []
    for i, name in enumerate(names):
        rgb = lfw_image(lfw, name, 1)
        res = wm.detect(rgb, search=False)  # the one test as it is: z ≈ N(0, 1)
        assert not res.present, (name, res)
        zs.append(res.confidence)
        best = wm.detect(rgb)  # best of 401 re-alignments
        assert not best.present and best.confidence < 5.0, (name, best)
        if i % 5 == 0:  # 10 photos marked: JPEG q50 after halving (250 → 125 px)
            attacked = wm.detect(jpeg(half(wm.embed(rgb, PAYLOAD))))
            assert attacked.present, (name, attacked)
    assert max(zs) < 4.5 and abs(float(np.mean(zs))) < 0.6


# ------------------------------------------------------------------------------------------- video


def write_clip(path: Path, frames: list[np.ndarray], crf: int) -> None:
    vw = VideoWriter(path, 30.0, EncodeOptions(crf=crf))
    for i, f in enumerate(frames):
        vw.write(f, i / 30.0)
    vw.close()


def pan_frames(astronaut: np.ndarray, n: int = 30, w: int = 960, h: int = 544) -> list[np.ndarray]:
    big = cv2.resize(astronaut, (1100, 1100), interpolation=cv2.INTER_CUBIC)
    return [np.ascontiguousarray(big[200 + i : 200 + i + h, 3 * i : 3 * i + w]) for i in range(n)]


def test_video_crf28(wm: Watermarker, astronaut: np.ndarray, tmp_path: Path) -> None:
    frames = pan_frames(astronaut)
    mark = wm.frame_marker(PAYLOAD)
    marked = [mark(f) for f in frames]
    assert mark.frames == len(frames)
    assert min(psnr(a, b) for a, b in zip(frames, marked, strict=True)) >= 40.0
    write_clip(tmp_path / "marked.mp4", marked, crf=28)
    write_clip(tmp_path / "plain.mp4", frames, crf=28)
    res = detect_file(tmp_path / "marked.mp4")
    assert res.present and res.content_id == PAYLOAD.content_id and res.frames == len(frames), res
    plain = detect_file(tmp_path / "plain.mp4", max_frames=10)
    assert not plain.present and plain.content_id is None and plain.frames == 10, plain


def test_detect_frames_still_clip_does_not_inflate(wm: Watermarker, hopper: np.ndarray) -> None:
    one = wm.detect(hopper, search=False)  # video frames are not re-aligned
    many = wm.detect_frames([hopper] * 20)
    assert many.frames == 20 and not many.present
    assert many.confidence == pytest.approx(one.confidence, abs=1e-6)
    assert wm.detect_frames([]).reason


def test_detect_file_image(wm: Watermarker, astronaut: np.ndarray, tmp_path: Path) -> None:
    p = tmp_path / "m.jpg"
    cv2.imwrite(str(p), cv2.cvtColor(wm.embed(astronaut, PAYLOAD), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 50])  # fmt: skip
    res = detect_file(p)
    assert res.present and res.content_id == PAYLOAD.content_id
    assert res.to_dict()["content_hex"] == PAYLOAD.hex


def test_luma_marking_equals_rgb_marking(wm: Watermarker, astronaut: np.ndarray, tmp_path: Path) -> None:
    """Marking the encoder's Y plane (what video swaps do) gives the RGB marker's pixels within rounding,
    including on a rotated view, and survives CRF 28 the same way."""
    frames = pan_frames(astronaut, n=12)
    rgb_mark, luma_mark, turned = wm.frame_marker(PAYLOAD), wm.frame_marker(PAYLOAD), wm.frame_marker(PAYLOAD)
    via_luma, via_rgb = [], []
    for f in frames:
        by_rgb = rgb_mark(f)
        yuv = cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420)
        assert luma_mark.mark_luma(yuv[: f.shape[0]])
        back = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
        plain = cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)
        assert psnr(back, plain) < 50.0  # it did change the frame ...
        ref = cv2.cvtColor(cv2.cvtColor(by_rgb, cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)
        # ... as the RGB marker does, within rounding (measured 48 dB; the mark itself is ~43 dB)
        assert psnr(back, ref) >= 46.0, psnr(back, ref)
        # a portrait-rotated Y plane marked through its upright view
        up = np.ascontiguousarray(np.rot90(f))
        stored_y = cv2.cvtColor(np.ascontiguousarray(np.rot90(up, -1)), cv2.COLOR_RGB2GRAY)
        before = stored_y.copy()
        assert turned.mark_luma(np.rot90(stored_y))
        assert np.abs(stored_y.astype(int) - before).max() > 0
        via_luma.append(back)
        via_rgb.append(ref)
    assert luma_mark.frames == len(frames) and rgb_mark.frames == len(frames)
    write_clip(tmp_path / "luma.mp4", via_luma, crf=28)
    write_clip(tmp_path / "rgb.mp4", via_rgb, crf=28)
    res, ref_res = detect_file(tmp_path / "luma.mp4"), detect_file(tmp_path / "rgb.mp4")
    assert res.present and res.content_id == PAYLOAD.content_id, res
    assert res.confidence >= 0.9 * ref_res.confidence, (res, ref_res)
    small = np.zeros((MIN_EMBED_SIDE - 2, 300), np.uint8)
    assert not luma_mark.mark_luma(small) and luma_mark.skipped == 1
