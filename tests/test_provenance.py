"""Provenance on what masquerade writes: watermark + signed C2PA manifest by default, ``--no-provenance``
recorded in the metadata, and ``masquerade verify`` (exit 0 marked / 3 nothing / 4 tampered)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from PIL import Image
from test_video import make_clip

from masquerade import FaceSwapper, load_image, sample_path
from masquerade.cli.main import main
from masquerade.job import SwapJob
from masquerade.provenance.stamp import OutputStamp, ProvenanceOptions, read_note
from masquerade.provenance.verification import verify_file
from masquerade.provenance.watermark import Watermarker, detect_file
from masquerade.video.probe import iter_frames
from masquerade.video.swap import swap_video
from masquerade.video.transcode import EncodeOptions, transcode


def swap(out: Path, *extra: str, target: str = "sample:astronaut") -> int:
    return main(["swap", "-s", "sample:grace_hopper", "-t", target, "-o", str(out), *extra])


def verify(path: Path, capsys) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["verify", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def marked_jpg(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prov") / "swap.jpg"
    assert swap(out) == 0
    return out


def test_swapped_image_carries_watermark_and_valid_manifest_with_one_content_id(marked_jpg, capsys):
    code, doc = verify(marked_jpg, capsys)
    assert code == 0, doc["verdict"]
    wm, c2 = doc["watermark"], doc["c2pa"]
    assert wm["present"] and wm["confidence"] > 12
    assert c2["valid"] and not c2["tampered"] and c2["swapper"] == "mesh3d"
    assert wm["content_hex"] == c2["content_id"]  # the watermark and the manifest name the same output
    assert doc["note"].startswith("masquerade:") and c2["content_id"] in doc["note"]
    manifest = verify_file(marked_jpg).manifest
    action = manifest["assertions"][0]["data"]["actions"][0]
    assert action["digitalSourceType"].endswith("trainedAlgorithmicMedia")


def test_watermark_survives_jpeg_q50_and_half_size_of_a_real_output(marked_jpg, tmp_path, capsys):
    img = Image.open(marked_jpg).convert("RGB")
    small = img.resize((img.width // 2, img.height // 2), Image.Resampling.LANCZOS)
    out = tmp_path / "laundered.jpg"
    small.save(out, quality=50)  # re-encoding also strips the C2PA manifest
    code, doc = verify(out, capsys)
    assert code == 0 and doc["watermark"]["present"]
    assert not doc["c2pa"]["present"]
    assert doc["watermark"]["content_hex"] == verify(marked_jpg, capsys)[1]["c2pa"]["content_id"]


def test_tampered_pixels_fail_c2pa_verification(marked_jpg, tmp_path, capsys):
    data = bytearray(marked_jpg.read_bytes())
    sos = data.rfind(b"\xff\xda")  # start of the entropy-coded scan
    for k in range(sos + 600, sos + 640):
        data[k] ^= 0x5A
    bad = tmp_path / "tampered.jpg"
    bad.write_bytes(bytes(data))
    code, doc = verify(bad, capsys)
    assert code == 4, doc["verdict"]
    assert doc["c2pa"]["present"] and doc["c2pa"]["tampered"] and not doc["c2pa"]["valid"]


def test_unmarked_photo_verifies_as_nothing_found(capsys):
    code, doc = verify(sample_path("astronaut"), capsys)
    assert code == 3
    assert not doc["watermark"]["present"] and not doc["c2pa"]["present"] and doc["note"] is None


def test_no_provenance_is_explicit_and_recorded(tmp_path, capsys):
    out = tmp_path / "plain.png"
    assert swap(out, "--no-provenance") == 0
    assert "turned off" in capsys.readouterr().err
    code, doc = verify(out, capsys)
    assert code == 3 and not doc["watermark"]["present"] and not doc["c2pa"]["present"]
    assert "turned off by the user" in doc["note"]
    assert "provenance was turned off" in doc["verdict"]


def test_bmp_gets_a_sidecar_which_is_checked_like_the_output(tmp_path, capsys):
    out = tmp_path / "swap.bmp"
    side = tmp_path / "swap.c2pa"
    side.write_bytes(b"someone else's file")
    assert swap(out) == 2  # the sidecar would replace an existing file: refused like the output
    assert "already exists" in capsys.readouterr().err and not out.exists()
    assert swap(out, "--force") == 0
    code, doc = verify(out, capsys)
    assert code == 0 and doc["c2pa"]["valid"] and doc["c2pa"]["sidecar"] == str(side)
    # a sidecar that names an input is refused before any work
    tgt = tmp_path / "t.c2pa"
    tgt.write_bytes(Path(sample_path("astronaut")).read_bytes())
    assert swap(tmp_path / "t.bmp", "--force", target=str(tgt)) == 2


def test_signing_with_a_configured_key_and_its_errors(tmp_path, capsys):
    from masquerade.provenance.credentials import local_signing_config

    cfg = local_signing_config(tmp_path / "keys")
    out = tmp_path / "signed.png"
    assert swap(out, "--c2pa-cert", str(cfg.cert_chain), "--c2pa-key", str(cfg.private_key)) == 0
    rep = verify_file(out)
    assert rep.valid and "local signer" in (rep.signer or "")
    assert swap(tmp_path / "x.png", "--c2pa-cert", str(cfg.cert_chain)) == 2
    assert "go together" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    assert swap(tmp_path / "y.png", "--c2pa-cert", str(garbage), "--c2pa-key", str(garbage)) == 2
    assert not (tmp_path / "y.png").exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_small_output_is_signed_but_says_it_is_too_small_to_watermark(tmp_path):
    rgb = cv2.resize(load_image(sample_path("astronaut")).rgb, (100, 100))
    stamp = OutputStamp("mesh3d")
    stamp.write_image(tmp_path / "tiny.png", rgb)
    assert not stamp.record.watermarked and "minimum" in stamp.record.watermark_note
    assert verify_file(tmp_path / "tiny.png").valid


@pytest.fixture(scope="module")
def source(analyzer):
    rgb = load_image(sample_path("grace_hopper")).rgb
    return [(rgb, FaceSwapper(analyzer=analyzer).source_face(rgb))]


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_swapped_video_is_marked_in_every_frame_and_signed(tmp_path, analyzer, source, ext, capsys):
    clip = tmp_path / "in.mp4"
    make_clip(clip, frames=20, size=(320, 240))
    out = tmp_path / f"out{ext}"
    rep = swap_video(SwapJob(sources=source), clip, out, analyzer=analyzer)
    assert rep.provenance is not None and rep.provenance.frames_marked == 20
    assert rep.provenance.c2pa == ("embedded" if ext == ".mp4" else "sidecar")
    code, doc = verify(out, capsys)
    assert code == 0, doc["verdict"]
    assert doc["watermark"]["content_hex"] == doc["c2pa"]["content_id"] == rep.provenance.content_id
    # each frame on its own carries the mark, not only their average
    wm = Watermarker()
    found = [wm.detect(rgb).present for rgb, _ in iter_frames(out)]
    assert len(found) == 20 and all(found)


def test_video_watermark_survives_crf28_reencode_and_unmarked_clip_does_not_score(tmp_path, analyzer, source):
    clip = tmp_path / "in.mp4"
    make_clip(clip, frames=20, size=(640, 480), audio=False)
    out = tmp_path / "out.mp4"
    swap_video(SwapJob(sources=source), clip, out, analyzer=analyzer)
    again = tmp_path / "crf28.mp4"
    transcode(out, again, lambda rgb, t: rgb, EncodeOptions(crf=28, preset="medium"))
    res = detect_file(again)
    assert res.present and res.content_id is not None
    plain = tmp_path / "plain.mp4"
    swap_video(
        SwapJob(sources=source, provenance=ProvenanceOptions(enabled=False)), clip, plain, analyzer=analyzer
    )
    assert not detect_file(plain).present
    assert "turned off" in read_note(plain)
    assert not verify_file(plain).present


def test_cli_video_output_and_live_output_are_marked(tmp_path, capsys):
    clip = tmp_path / "in.mp4"
    make_clip(clip, frames=15, size=(320, 240))
    out = tmp_path / "cli.mov"
    assert swap(out, target=str(clip)) == 0
    assert verify(out, capsys)[0] == 0
    live = tmp_path / "live.mp4"
    args = ["live", "-s", "sample:grace_hopper", "-i", str(clip), "-o", str(live), "--no-pace"]
    assert main(args) == 0
    code, doc = verify(live, capsys)
    assert code == 0 and doc["watermark"]["present"] and doc["c2pa"]["valid"]


def test_verify_errors_are_one_line(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "missing.jpg")]) == 2
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8 not really")
    assert main(["verify", str(tmp_path / "junk.jpg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error:") for line in err)


def test_signing_failure_leaves_no_output(tmp_path, monkeypatch):
    monkeypatch.setenv("MASQUERADE_C2PA_CERT", str(tmp_path / "nope.pem"))
    monkeypatch.setenv("MASQUERADE_C2PA_KEY", str(tmp_path / "nope.key"))
    out = tmp_path / "o.jpg"
    assert swap(out) == 2
    assert not out.exists() and not list(tmp_path.glob(".o.jpg*"))
