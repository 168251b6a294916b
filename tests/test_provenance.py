"""Provenance on what masquerade writes: watermark + signed C2PA manifest by default, ``--no-provenance``
recorded in the metadata, and ``masquerade verify`` (exit 0 marked / 3 nothing / 4 tampered)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
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


# ------------------------------------------------------------------------------ verdicts from what is found


def _png_chunk(data: bytes, kind: bytes) -> tuple[int, int]:
    """(offset, data length) of the first ``kind`` chunk of a PNG stream."""
    import struct

    i = 8
    while i < len(data):
        (n,) = struct.unpack(">I", data[i : i + 4])
        if data[i + 4 : i + 8] == kind:
            return i, n
        i += 12 + n
    raise AssertionError(f"no {kind!r} chunk")


@pytest.fixture(scope="module")
def marked_png(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prov_png") / "swap.png"
    assert swap(out) == 0
    return out


def test_one_corrupted_byte_in_the_png_manifest_chunk_is_tampering_and_the_watermark_still_reads(
    marked_png, tmp_path, capsys
):
    data = bytearray(marked_png.read_bytes())
    at, n = _png_chunk(bytes(data), b"caBX")  # the C2PA manifest store; its CRC is left as it was
    data[at + 8 + n // 2] ^= 0x01
    bad = tmp_path / "bad_crc.png"
    bad.write_bytes(bytes(data))
    code, doc = verify(bad, capsys)
    assert code == 4, doc["verdict"]
    f = doc["findings"]
    assert f["pixels"] == "repaired" and "caBX" in doc["pixels"]
    assert f["manifest"] in ("tampered", "unreadable") and doc["c2pa"]["present"] and not doc["c2pa"]["valid"]
    assert f["watermark"] == "present" and doc["watermark"]["confidence"] > 12
    cid = verify(marked_png, capsys)[1]["watermark"]["content_hex"]
    assert doc["watermark"]["content_hex"] == cid
    assert doc["note"] is not None and cid in doc["note"]  # the comment is found past the broken chunk
    assert doc["verdict"].startswith("PROVENANCE BROKEN") and "watermark present (z = " in doc["verdict"]
    # the same in the text report: tampered, and the watermark with its content id
    capsys.readouterr()
    assert main(["verify", str(bad)]) == 4
    text = capsys.readouterr().out
    assert "TAMPERED" in text and f"content id {cid}" in text and "not a readable image" not in text


def test_a_png_whose_pixels_are_damaged_too_is_still_unreadable(marked_png, tmp_path, capsys):
    data = bytearray(marked_png.read_bytes())
    at, n = _png_chunk(bytes(data), b"IDAT")  # a critical chunk: the pixels themselves
    data[at + 8 : at + 8 + n] = bytes(n)
    bad = tmp_path / "no_pixels.png"
    bad.write_bytes(bytes(data))
    code, doc = verify(bad, capsys)
    # the manifest is still there, so it is reported (and its hash no longer matches): tampered
    assert code == 4 and doc["findings"]["pixels"] == "unreadable"
    assert doc["findings"]["watermark"] == "not_measurable"


def test_a_cropped_swapped_jpeg_reports_what_was_found_not_provenance_off(marked_jpg, tmp_path, capsys):
    img = Image.open(marked_jpg)
    cropped = tmp_path / "cropped.jpg"
    img.crop((40, 30, img.width - 25, img.height - 35)).save(cropped, quality=90)  # Pillow keeps the comment
    code, doc = verify(cropped, capsys)
    assert code == 3
    f = doc["findings"]
    assert f["watermark"] == "absent" and f["manifest"] == "absent"
    assert f["metadata"] == "claims_provenance" and f["metadata_content_id"] in doc["note"]
    assert "turned off" not in doc["verdict"]
    assert "claims a masquerade output" in doc["verdict"] and f["metadata_content_id"] in doc["verdict"]


def test_a_masquerade_comment_pasted_onto_another_photo_is_not_provenance(marked_jpg, tmp_path, capsys):
    note = Image.open(marked_jpg).info["comment"]
    other = tmp_path / "other.jpg"
    Image.open(sample_path("astronaut")).convert("RGB").save(other, quality=92, comment=note)
    code, doc = verify(other, capsys)
    assert code == 3 and doc["note"] is not None
    assert doc["findings"] == {
        "pixels": "decoded", "watermark": "absent", "manifest": "absent",
        "metadata": "claims_provenance", "metadata_content_id": doc["findings"]["metadata_content_id"],
    }  # fmt: skip
    assert "turned off" not in doc["verdict"] and "copied" in doc["verdict"]
    # a pasted "turned off" comment is reported as what it says, and as unsigned
    off = tmp_path / "off.jpg"
    Image.open(sample_path("astronaut")).convert("RGB").save(
        off, comment="masquerade: synthetic media; provenance (watermark, C2PA) turned off by the user"
    )
    code, doc = verify(off, capsys)
    assert code == 3 and doc["findings"]["metadata"] == "provenance_off"
    assert "says provenance was turned off" in doc["verdict"] and "unsigned" in doc["verdict"]


def test_a_swapped_487x500_photo_halved_with_rounding_keeps_its_watermark(tmp_path, capsys):
    """Issue 22: an odd-sized swap halved by a resizer that rounds 243.5 px up to 244 and keeps the exact
    0.5 scale (OpenCV fx=0.5, Pillow reduce) used to read 'watermark absent' (z ≈ 5)."""
    target = tmp_path / "t487.png"
    rgb = cv2.resize(load_image(sample_path("astronaut")).rgb, (487, 500), interpolation=cv2.INTER_AREA)
    Image.fromarray(rgb).save(target)
    out = tmp_path / "s487.png"
    assert swap(out, target=str(target)) == 0
    cid = verify(out, capsys)[1]["watermark"]["content_hex"]
    marked = load_image(out).rgb
    halves = {
        "fx": cv2.resize(marked, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
        "reduce": np.asarray(Image.fromarray(marked).reduce(2)),
    }
    wm = Watermarker()
    for name, small in halves.items():
        assert small.shape[:2] == (250, 244), name
        assert wm.detect(small, search=False).confidence < 6.0, name  # the cause: the geometry moved
        path = tmp_path / f"half_{name}.png"
        Image.fromarray(small).save(path)
        code, doc = verify(path, capsys)
        assert code == 0, (name, doc["verdict"])
        assert doc["watermark"]["content_hex"] == cid and doc["watermark"]["confidence"] > 12, name
        assert doc["watermark"]["alignment"] and "right -0.5" in doc["watermark"]["alignment"]
