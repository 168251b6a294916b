"""Video swap: timing, audio, frame count, tracking, pass-through, trims, damaged and odd inputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import SHARED

from masquerade import (
    FaceAnalyzer,
    FaceSwapper,
    InputError,
    NoFaceError,
    load_image,
    sample_path,
)
from masquerade.cli.main import main
from masquerade.job import SwapJob
from masquerade.video.live import run_live
from masquerade.video.probe import iter_frames, probe
from masquerade.video.swap import VideoOptions, swap_video
from masquerade.video.transcode import EncodeOptions
from masquerade.video.writer import VideoWriter

VIDEOS = SHARED / "videos"


def make_clip(
    path: Path, frames: int = 30, size: tuple[int, int] = (320, 240), fps: int = 25, audio: bool = True,
    blank: set[int] | None = None, face: bool = True,
) -> list[np.ndarray]:  # fmt: skip
    """A clip of the astronaut's head drifting right, with a 440 Hz tone; returns the frames written."""
    w, h = size
    head = cv2.resize(load_image(sample_path("astronaut")).rgb[20:260, 120:330], (105, 120))
    written = []
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv444p" if w % 2 or h % 2 else "yuv420p"
        vs.options = {"crf": "12", "preset": "ultrafast"}
        a_s = c.add_stream("aac", rate=44100) if audio else None
        for i in range(frames):
            img = np.full((h, w, 3), 70, np.uint8)
            img[:, :, 2] = np.linspace(40, 160, w, dtype=np.uint8)[None, :]
            if face and not (blank and i in blank):
                x = 60 + 2 * i
                img[50:170, x : x + 105] = head
            written.append(img)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)
        if a_s is not None:
            n = int(44100 * frames / fps)
            t = np.arange(n) / 44100
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
            for k in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[:, k : k + 1024], format="fltp", layout="mono")
                af.sample_rate = 44100
                for p in a_s.encode(af):
                    c.mux(p)
            for p in a_s.encode(None):
                c.mux(p)
    return written


@pytest.fixture(scope="module")
def source(analyzer):
    rgb = load_image(sample_path("grace_hopper")).rgb
    return [(rgb, FaceSwapper(analyzer=analyzer).source_face(rgb))]


def audio_packets(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.demux(c.streams.audio[0])) if c.streams.audio else 0


def test_generated_clip_keeps_timing_audio_and_background(tmp_path, analyzer, source):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=30, blank={12, 13})
    frames_in = [f for f, _ in iter_frames(src)]  # as decoded: the output differs by one encode only
    out = tmp_path / "out.mp4"
    report = swap_video(SwapJob(sources=source), src, out, analyzer=analyzer)
    a, b = probe(src), probe(out)
    assert (b.width, b.height, b.fps) == (a.width, a.height, a.fps)
    assert b.frames == a.frames == 30 and b.duration == pytest.approx(a.duration, abs=0.05)
    assert b.has_audio and report.transcode.audio_mode == "copy"
    assert audio_packets(out) == audio_packets(src) > 0
    assert report.frames == 30 and report.frames_swapped == 28 and report.tracks == 1
    for i, (frame, _) in enumerate(iter_frames(out)):
        diff = np.abs(frame.astype(int) - frames_in[i].astype(int)).max(axis=2)
        x = 60 + 2 * i
        face = np.zeros(diff.shape, bool)
        face[40:180, x - 10 : x + 115] = True
        assert diff[~face].mean() < 2.0, f"frame {i}: background changed"
        if i in (12, 13):
            assert diff.mean() < 2.0, f"frame {i} has no face and must pass through"
        else:
            assert diff[80:120, x + 32 : x + 72].mean() > 8.0, f"frame {i}: inner face not swapped"


def test_odd_size_and_no_audio(tmp_path, analyzer, source):
    src = tmp_path / "odd.mp4"
    make_clip(src, frames=10, size=(321, 241), audio=False)
    out = tmp_path / "odd_out.mkv"
    report = swap_video(SwapJob(sources=source), src, out, analyzer=analyzer)
    info = probe(out)
    assert (info.width, info.height, info.has_audio) == (321, 241, False)
    assert sum(1 for _ in iter_frames(out)) == 10  # Matroska has no frame count in its header
    assert report.frames_swapped == 10


def test_no_face_anywhere_writes_nothing(tmp_path, analyzer, source):
    src = tmp_path / "empty.mp4"
    make_clip(src, frames=8, face=False)
    out = tmp_path / "x.mp4"
    with pytest.raises(NoFaceError, match="no face to swap in any of the 8 frames"):
        swap_video(SwapJob(sources=source), src, out, analyzer=analyzer)
    assert not out.exists() and list(tmp_path.glob(".*part*")) == []


def test_truncated_video_swaps_what_decodes(tmp_path, analyzer, source):
    src = tmp_path / "full.mp4"
    make_clip(src, frames=40, audio=False)
    cut = tmp_path / "cut.mp4"
    data = src.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out = tmp_path / "cut_out.mp4"
    try:
        report = swap_video(SwapJob(sources=source), cut, out, analyzer=analyzer)
    except InputError as exc:  # a cut that loses the index entirely is a clear error, not a crash
        assert "cut.mp4" in str(exc)
        assert not out.exists()
        return
    assert 0 < report.frames < 40
    assert probe(out).frames == report.frames


def test_bad_video_inputs(tmp_path, analyzer, source):
    audio_only = tmp_path / "audio.mp4"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=44100)
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate = 44100
        for p in [*s.encode(af), *s.encode(None)]:
            c.mux(p)
    with pytest.raises(InputError, match="no video stream"):
        swap_video(SwapJob(sources=source), audio_only, tmp_path / "o.mp4", analyzer=analyzer)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01not a video" * 50)
    with pytest.raises(InputError, match="not a readable video"):
        swap_video(SwapJob(sources=source), junk, tmp_path / "o.mp4", analyzer=analyzer)
    assert not (tmp_path / "o.mp4").exists()


def test_cli_video_swap_and_collisions(tmp_path, capsys):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=12)
    out = tmp_path / "out.mp4"
    assert main(["swap", "-s", "sample:grace_hopper", "-t", str(src), "-o", str(out)]) == 0
    assert probe(out).frames == 12
    assert main(["swap", "-s", "sample:grace_hopper", "-t", str(src), "-o", str(out)]) == 2
    assert main(["swap", "-s", "sample:grace_hopper", "-t", str(src), "-o", str(src), "--force"]) == 2
    assert main(["swap", "-s", "sample:grace_hopper", "-t", str(src), "-o", str(tmp_path / "o.png")]) == 2
    assert (
        main(
            ["swap", "-s", "sample:grace_hopper", "-t", str(src), "-o", str(out), "--start", "99", "--force"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "already exists" in err and "overwrite the input" in err and "outside the video" in err
    assert "Traceback" not in err


def test_live_mode_paces_and_writes(tmp_path, analyzer, source):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=20, audio=False)
    from masquerade.video.swap import VideoFaceSwapper

    vs = VideoFaceSwapper(SwapJob(sources=source), analyzer=analyzer)
    out = tmp_path / "live.mp4"
    writer = VideoWriter(out, 25)
    stats = run_live(iter_frames(src), vs, writer.write, pace=True)
    writer.close()
    assert stats.frames_read == 20 and stats.frames_processed + stats.frames_dropped == 20
    assert stats.seconds >= 0.7  # 20 frames at 25 fps take ~0.76 s of stream time: paced, not rushed
    assert probe(out).frames == stats.frames_processed > 0


@pytest.fixture(scope="module")
def clips() -> Path:
    if not VIDEOS.is_dir():
        pytest.skip(f"clips not available at {VIDEOS} (../shared/data/videos beside the repo)")
    return VIDEOS


@pytest.mark.slow  # real clip
def test_talking_head_is_stable_and_smooth(tmp_path, clips, analyzer, source):
    from masquerade.video.temporal import compare

    src = clips / "talking_512_d0.mp4"
    out = tmp_path / "talk.mp4"
    report = swap_video(SwapJob(sources=source), src, out, analyzer=analyzer)
    a, b = probe(src), probe(out)
    assert (b.frames, b.fps, b.width, b.height) == (a.frames, a.fps, a.width, a.height)
    assert report.tracks == 1 and report.frames_swapped == report.frames == a.frames
    res = compare(src, out, max_frames=78, analyzer=FaceAnalyzer(identity=False))
    assert res["ratio"]["jitter"] <= 1.25, res
    assert res["ratio"]["flicker"] <= 1.5, res


@pytest.mark.slow  # real clip
def test_trimmed_music_video_keeps_audio_and_sees_the_cut(tmp_path, clips, analyzer, source):
    src = clips / "music_720p.mp4"
    out = tmp_path / "music.mp4"
    vopts = VideoOptions(encode=EncodeOptions(start=2.0, end=4.0))
    report = swap_video(SwapJob(sources=source, video=vopts), src, out, analyzer=analyzer)
    info = probe(out)
    assert abs(info.frames - 60) <= 1 and info.fps == pytest.approx(30)
    assert info.has_audio and report.transcode.audio_mode == "copy"
    assert report.transcode.frames_in < 200, "decoding must stop at the trim end"
    assert report.scene_cuts == 1  # the cut at 3.1 s
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert float(a.duration * a.time_base) == pytest.approx(2.0, abs=0.1)


def _write_frames(
    path: Path, frames: list[np.ndarray], pts: list[int], tb: Fraction, rotation: int = 0
) -> None:
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height = frames[0].shape[1], frames[0].shape[0]
        vs.pix_fmt = "yuv420p"
        vs.time_base = tb
        vs.codec_context.time_base = tb
        vs.options = {"crf": "12", "preset": "ultrafast"}
        if rotation:
            vs.set_display_rotation(rotation)
        for img, p in zip(frames, pts, strict=True):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = p, tb
            for pk in vs.encode(f):
                c.mux(pk)
        for pk in vs.encode(None):
            c.mux(pk)


def _pts(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [f.pts for f in c.decode(c.streams.video[0])]


def test_variable_frame_rate_timestamps_are_kept(tmp_path, analyzer, source):
    plain = tmp_path / "plain.mp4"
    frames = make_clip(plain, frames=16, audio=False)
    tb = Fraction(1, 1000)
    pts = [int(i * 40 + (i % 3) * 13 + (i // 5) * 25) for i in range(16)]  # irregular gaps
    src = tmp_path / "vfr.mp4"
    _write_frames(src, frames, pts, tb)
    out = tmp_path / "vfr_out.mp4"
    swap_video(SwapJob(sources=source), src, out, analyzer=analyzer)
    assert _pts(out) == _pts(src)


def test_rotation_metadata_is_kept_and_faces_are_found_upright(tmp_path, analyzer, source):
    plain = tmp_path / "plain.mp4"
    upright = make_clip(plain, frames=8, audio=False)
    # store the frames rotated, with a display matrix that turns them back upright
    stored = [np.ascontiguousarray(np.rot90(f, -1)) for f in upright]
    src = tmp_path / "rot.mp4"
    _write_frames(src, stored, [i * 40 for i in range(8)], Fraction(1, 1000), rotation=90)
    assert probe(src).rotation == 90
    frames_up = [f for f, _ in iter_frames(src)]
    assert frames_up[0].shape[:2] == upright[0].shape[:2]  # iter_frames applies the rotation
    out = tmp_path / "rot_out.mp4"
    report = swap_video(SwapJob(sources=source), src, out, analyzer=analyzer)
    assert report.frames_swapped == 8  # a sideways face would not have been found
    info = probe(out)
    assert info.rotation == 90 and (info.width, info.height) == (probe(src).width, probe(src).height)
