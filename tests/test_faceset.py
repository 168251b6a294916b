"""Faceset extraction (``masquerade extract``) and the faceset loader, on real faces."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import SHARED

from masquerade import InputError, NoFaceError, OutputError, load_image, sample_path, save_image
from masquerade.analysis.alignment import template
from masquerade.cli.main import main
from masquerade.faceset.extract import ExtractOptions, extract_faceset
from masquerade.faceset.format import FORMAT, REJECT_REASONS, VERSION, load_faceset

TALKING = SHARED / "videos" / "talking_512_d6.mp4"


def write_clip(path: Path, heads: list[np.ndarray | None], size: tuple[int, int] = (360, 280)) -> None:
    """A clip with one frame per entry of ``heads``: that head pasted at a fixed place (None: no face)."""
    w, h = size
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": "12", "preset": "ultrafast"}
        for head in heads:
            img = np.full((h, w, 3), 70, np.uint8)
            img[:, :, 2] = np.linspace(40, 160, w, dtype=np.uint8)[None, :]
            if head is not None:
                img[20 : 20 + head.shape[0], 75 : 75 + head.shape[1]] = head
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode(None):
            c.mux(p)


@pytest.fixture(scope="module")
def head() -> np.ndarray:
    return load_image(sample_path("astronaut")).rgb[20:260, 120:330].copy()  # face about 100 px


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """The two sample photos, a text file (ignored) and a broken JPEG (counted as unreadable)."""
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("astronaut", "grace_hopper"):
        (d / f"{name}.jpg").write_bytes(sample_path(name).read_bytes())
    (d / "notes.txt").write_text("not an image\n")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return d


def leftovers(folder: Path) -> list[str]:
    """Temporary or half-written folders beside an output."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def check_counts(doc: dict, frames: int) -> None:
    """With faces=largest every analysed frame ends in exactly one outcome."""
    assert sum(doc["rejected"].values()) + len(doc["faces"]) == frames
    assert list(doc["rejected"]) == list(REJECT_REASONS)


def test_folder_faceset_format_and_loader(tmp_path, photo_folder, analyzer):
    out = tmp_path / "fs"
    report = extract_faceset([photo_folder], out, ExtractOptions(size=192), analyzer=analyzer)
    assert report.kept == 2 and report.images == 2 and report.unreadable == 1
    assert sorted(p.name for p in out.iterdir()) == ["faces", "faceset.json", "pose.png", "summary.txt"]
    assert leftovers(tmp_path) == []
    doc = json.loads((out / "faceset.json").read_text())
    assert (doc["format"], doc["version"], doc["size"], doc["template"]) == (FORMAT, VERSION, 192, "ffhq")
    assert doc["created"].endswith("Z") and doc["tool"].startswith("masquerade ")
    assert doc["sources"] == [str(photo_folder)]
    assert doc["settings"]["blur_threshold"] == ExtractOptions().blur_threshold
    check_counts(doc, 2)
    assert doc["summary"]["count"] == 2 and doc["summary"]["unreadable"] == 1
    assert -15 < doc["summary"]["yaw"]["min"] <= doc["summary"]["yaw"]["max"] < 15
    tpl = template("ffhq", 192)
    sources = set()
    for f in doc["faces"]:
        sources.add(Path(f["source"]).name)
        assert f["frame"] is None and f["time"] is None and f["identity_distance"] is None
        crop = cv2.imread(str(out / f["image"]))
        mask = cv2.imread(str(out / f["mask"]), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (192, 192, 3) and mask.shape == (192, 192) and mask.dtype == np.uint8
        lm5 = np.array(f["landmarks_5"])
        assert np.abs(lm5 - tpl).max() < 0.06 * 192  # aligned to the template
        assert np.array(f["landmarks_68"]).shape == (68, 2)
        # the matrix maps the original landmarks into the crop
        orig = load_image(photo_folder / Path(f["source"]).name).rgb
        m = np.array(f["matrix"])
        assert m.shape == (2, 3)
        warped = cv2.warpAffine(orig, m, (192, 192), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        assert np.abs(warped.astype(int) - crop[..., ::-1].astype(int)).mean() < 3
        # the mask covers the face, centred between the eyes and the mouth
        inside = mask > 127
        assert 0.15 < inside.mean() < 0.7
        ys, xs = np.nonzero(inside)
        assert abs(xs.mean() - 96) < 15 and abs(ys.mean() - 0.55 * 192) < 25
        assert inside[int(lm5[2, 1]), int(lm5[2, 0])] and not inside[2, 2]
        assert set(f["pose"]) == {"yaw", "pitch", "roll"} and f["face_px"] > 64 and f["blur"] > 0
        x1, y1, x2, y2 = f["box"]
        assert 0 <= x1 < x2 <= orig.shape[1] and 0 <= y1 < y2 <= orig.shape[0]
    assert sources == {"astronaut.jpg", "grace_hopper.jpg"}
    assert "2 faces" in (out / "summary.txt").read_text()
    assert cv2.imread(str(out / "pose.png")) is not None

    fs = load_faceset(out)
    assert len(fs) == 2 and fs.size == 192 and fs.template == "ffhq"
    assert fs.rejected == doc["rejected"] and fs.sources == doc["sources"]
    for i, face in enumerate(fs.faces):
        img, mask = fs.read_image(i), fs.read_mask(face)
        assert img.dtype == np.uint8 and img.shape == (192, 192, 3) and mask.shape == (192, 192)
        assert np.array_equal(img, cv2.imread(str(out / face.image))[..., ::-1])
        assert np.allclose(face.landmarks_5, doc["faces"][i]["landmarks_5"])
        assert face.matrix.shape == (2, 3) and face.pose == doc["faces"][i]["pose"]
    assert len(load_faceset(out / "faceset.json")) == 2


@pytest.mark.slow
def test_dedup_on_a_static_clip(tmp_path, head, analyzer):
    clip = tmp_path / "static.mp4"
    write_clip(clip, [head] * 16 + [None] * 2)
    out = tmp_path / "fs"
    report = extract_faceset([clip], out, analyzer=analyzer)
    doc = json.loads((out / "faceset.json").read_text())
    assert report.frames == 18 and report.rejected["no_face"] == 2
    assert report.kept <= 2 and report.rejected["duplicate"] >= 14
    check_counts(doc, 18)
    f = doc["faces"][0]
    assert f["frame"] == 0 and f["time"] == pytest.approx(0.0, abs=0.05) and f["source"] == str(clip)
    # without de-duplication every face frame is kept; every_n thins the frames
    all_kept = extract_faceset([clip], tmp_path / "all", ExtractOptions(dedup_threshold=0), analyzer=analyzer)
    assert all_kept.kept == 16
    thin = extract_faceset(
        [clip],
        tmp_path / "thin",
        ExtractOptions(dedup_threshold=0, every_n=4, max_faces=3),
        analyzer=analyzer,
    )
    assert thin.kept == 3 and thin.frames == 3
    assert [f.frame for f in load_faceset(tmp_path / "thin").faces] == [0, 4, 8]


def test_blur_filter_rejects_a_blurred_copy(tmp_path, analyzer):
    d = tmp_path / "photos"
    d.mkdir()
    rgb = load_image(sample_path("grace_hopper")).rgb
    save_image(d / "a_sharp.png", rgb)
    save_image(d / "b_blurred.png", cv2.GaussianBlur(rgb, (0, 0), 5.0))
    report = extract_faceset([d], tmp_path / "fs", analyzer=analyzer)
    assert report.kept == 1 and report.rejected["blurry"] == 1
    assert Path(load_faceset(tmp_path / "fs").faces[0].source).name == "a_sharp.png"
    loose = extract_faceset([d], tmp_path / "all", ExtractOptions(blur_threshold=0), analyzer=analyzer)
    assert loose.kept == 2


def test_identity_filter_keeps_only_the_reference_person(tmp_path, photo_folder, pair_image, analyzer):
    ref = analyzer.get(load_image(sample_path("grace_hopper")).rgb, identity=True)[0].embedding
    opts = ExtractOptions(reference=ref, reference_label="hopper.jpg")
    report = extract_faceset([photo_folder], tmp_path / "fs", opts, analyzer=analyzer)
    fs = load_faceset(tmp_path / "fs")
    assert report.kept == 1 and report.rejected["other_person"] == 1
    assert Path(fs.faces[0].source).name == "grace_hopper.jpg"
    assert fs.faces[0].identity_distance is not None and fs.faces[0].identity_distance < 0.3
    assert fs.settings["reference"] == "hopper.jpg"
    # a group photo: 'all' keeps both faces, with the reference only the matching one
    group = tmp_path / "group.png"
    save_image(group, pair_image)
    both = extract_faceset([group], tmp_path / "both", ExtractOptions(faces="all"), analyzer=analyzer)
    assert both.kept == 2
    one = extract_faceset(
        [group], tmp_path / "one", ExtractOptions(faces="all", reference=ref), analyzer=analyzer
    )  # fmt: skip
    assert one.kept == 1 and one.rejected["other_person"] == 1
    assert load_faceset(tmp_path / "one").faces[0].box[0] > 550  # Hopper is on the right
    largest = extract_faceset([group], tmp_path / "largest", ExtractOptions(reference=ref), analyzer=analyzer)
    assert largest.kept == 1 and load_faceset(tmp_path / "largest").faces[0].box[0] > 550


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(["extract", *args])
    return code, capsys.readouterr().err


def test_cli_summary_force_and_errors(tmp_path, capsys, monkeypatch):
    out = tmp_path / "fs"
    code, err = run_cli(capsys, "sample:astronaut", "-o", str(out), "--size", "128")
    assert code == 0 and err.startswith("kept 1 face from 1 image ") and "yaw" in err
    assert load_faceset(out).size == 128
    # an existing non-empty folder needs --force; it is then replaced
    code, err = run_cli(capsys, "sample:grace_hopper", "-o", str(out))
    assert code == 2 and err.count("\n") == 1 and "--force" in err
    assert Path(load_faceset(out).faces[0].source).name == "astronaut.jpg"
    (out / "extra.txt").write_text("x")
    code, err = run_cli(capsys, "sample:grace_hopper", "-o", str(out), "--force")
    assert code == 0 and not (out / "extra.txt").exists()
    assert Path(load_faceset(out).faces[0].source).name == "grace_hopper.jpg"
    # an image without a face: exit 3, one line, nothing written
    blank = tmp_path / "blank"
    blank.mkdir()
    save_image(blank / "grey.png", np.full((200, 200, 3), 128, np.uint8))
    code, err = run_cli(capsys, str(blank), "-o", str(tmp_path / "none"))
    assert code == 3 and err.count("\n") == 1 and "no usable face" in err
    assert not (tmp_path / "none").exists() and leftovers(tmp_path) == []
    # bad inputs and outputs: exit 2, one line, nothing written
    (tmp_path / "empty").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    bad = [
        (str(tmp_path / "missing.mp4"), tmp_path / "o1"),
        (str(tmp_path / "readme.txt"), tmp_path / "o2"),
        (str(tmp_path / "empty"), tmp_path / "o3"),
        (str(blank), blank / "inside"),
        (str(blank / "grey.png"), blank / "grey.png"),
    ]
    for src, dst in bad:
        code, err = run_cli(capsys, src, "-o", str(dst))
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (src, err)
        assert not dst.exists() or dst.is_file()
    assert sorted(p.name for p in blank.iterdir()) == ["grey.png"]
    assert leftovers(tmp_path) == []
    code, err = run_cli(capsys, "sample:astronaut", "-o", str(tmp_path / "o4"), "--size", "8")
    assert code == 2 and "size" in err
    monkeypatch.chdir(tmp_path / "empty")
    code, err = run_cli(capsys, "sample:astronaut", "-o", ".", "--force")
    assert code == 2 and "current folder" in err and (tmp_path / "empty").is_dir()


def test_interrupted_extraction_leaves_nothing(tmp_path, photo_folder, analyzer):
    def stop(done: int, total: int | None, kept: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        extract_faceset([photo_folder], tmp_path / "fs", analyzer=analyzer, progress=stop)
    assert not (tmp_path / "fs").exists() and leftovers(tmp_path) == []
    with pytest.raises(NoFaceError):
        extract_faceset(
            [sample_path("astronaut")], tmp_path / "fs", ExtractOptions(min_face=500), analyzer=analyzer
        )
    assert not (tmp_path / "fs").exists() and leftovers(tmp_path) == []
    (tmp_path / "fs").mkdir()
    (tmp_path / "fs" / "keep.txt").write_text("x")
    with pytest.raises(OutputError):
        extract_faceset([photo_folder], tmp_path / "fs", analyzer=analyzer)
    assert (tmp_path / "fs" / "keep.txt").exists()


def test_loader_rejects_bad_facesets(tmp_path):
    with pytest.raises(InputError, match="no such faceset"):
        load_faceset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"no faceset\.json"):
        load_faceset(tmp_path / "empty")
    d = tmp_path / "bad"
    d.mkdir()
    for doc, why in [
        ("{", "unreadable"),
        ('{"format": "other", "version": 1}', "not a masquerade faceset"),
        ('{"format": "masquerade-faceset", "version": 2}', "version 2 is not supported"),
        ('{"format": "masquerade-faceset", "version": 1, "size": 64}', "malformed"),
        (
            '{"format": "masquerade-faceset", "version": 1, "size": 64, "template": "ffhq", "faces": [{}]}',
            "malformed",
        ),
    ]:
        (d / "faceset.json").write_text(doc)
        with pytest.raises(InputError, match=why):
            load_faceset(d)


@pytest.mark.slow  # real clip
def test_talking_video(tmp_path, analyzer):
    if not TALKING.is_file():
        pytest.skip(f"{TALKING} not available (../shared/data/videos beside the repo)")
    opts = ExtractOptions(every_n=3, end=4.0, size=128)
    report = extract_faceset([TALKING], tmp_path / "fs", opts, analyzer=analyzer)
    doc = json.loads((tmp_path / "fs" / "faceset.json").read_text())
    check_counts(doc, report.frames)
    assert 35 <= report.frames <= 45 and report.kept >= 5
    fs = load_faceset(tmp_path / "fs")
    frames = [f.frame for f in fs.faces]
    assert frames == sorted(frames) and all(f % 3 == 0 for f in frames)
    assert all(f.time is not None and f.time < 4.0 for f in fs.faces)
    assert all(f.pose is not None and f.face_px > 64 for f in fs.faces)
    assert fs.read_mask(0).mean() > 40


def test_cli_video_over_the_pixel_limit_names_it(tmp_path, capsys, head):
    """A small --max-pixels is printed as it is (never rounded to '0 MP'), and nothing is written."""
    clip = tmp_path / "c.mp4"
    write_clip(clip, [head] * 3)
    out = tmp_path / "fs"
    code, err = run_cli(capsys, str(clip), "-o", str(out), "--max-pixels", "1000")
    assert code == 2 and err.count("\n") == 1, err
    assert "over the limit of 1,000 pixels" in err and "0 MP" not in err
    assert not out.exists() and leftovers(tmp_path) == []
