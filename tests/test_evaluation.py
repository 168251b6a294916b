"""The evaluation suite: metric maths on real faces, benchmark files, an end-to-end run on the sample
photos (mesh3d vs the no-swap baseline, a pair without a face counted as a failure), the report files,
user-supplied ONNX models (tiny ones built here with onnx.helper), video, and a few LFW pairs."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import shutil
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from masquerade import FaceAnalyzer, InputError, OutputError, sample_path
from masquerade.cli.main import main
from masquerade.evaluation import (
    Benchmark,
    OnnxImageModel,
    SwapperReport,
    VideoPairSpec,
    evaluate,
    evaluate_video,
    frechet_distance,
    limit_pairs,
    load_benchmark,
    load_pairs,
    psnr,
    retrieval_rank,
    ssim,
    swapper_spec,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = sample_path("astronaut")
HOPPER = sample_path("grace_hopper")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------ metrics


def ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Independent SSIM as scikit-image computes it (gaussian_weights, sigma 1.5, truncate 3.5,
    population covariance, reflect padding, 5-px crop), on BT.601 luma."""
    w = np.array([0.299, 0.587, 0.114])
    x, y = a.astype(np.float64) @ w, b.astype(np.float64) @ w

    def f(z: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(z, 1.5, truncate=3.5, mode="reflect")

    mx, my = f(x), f(y)
    vx, vy, cxy = f(x * x) - mx**2, f(y * y) - my**2, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s[5:-5, 5:-5].mean())


def test_ssim_on_a_real_face(astronaut: np.ndarray) -> None:
    face = astronaut[40:220, 150:300]
    assert ssim(face, face) == pytest.approx(1.0, abs=1e-12)
    b2 = cv2.GaussianBlur(face, (0, 0), 2.0)
    b4 = cv2.GaussianBlur(face, (0, 0), 4.0)
    s2, s4 = ssim(face, b2), ssim(face, b4)
    assert 0.2 < s4 < s2 < 0.97
    assert ssim(face, b2) == pytest.approx(ssim(b2, face), abs=1e-12)  # symmetric
    assert s2 == pytest.approx(ssim_reference(face, b2), abs=1e-6)
    noisy = np.clip(face + np.random.default_rng(0).normal(0, 20, face.shape), 0, 255).astype(np.uint8)
    assert ssim(face, noisy) == pytest.approx(ssim_reference(face, noisy), abs=1e-6)
    with pytest.raises(ValueError):
        ssim(face, face[:-1])


def test_psnr(astronaut: np.ndarray) -> None:
    a = astronaut[:200, :200]
    assert psnr(a, a) == float("inf")
    b = a.astype(np.int16)
    b[::2] += 5
    b[1::2] -= 5
    b = np.clip(b, 0, 255).astype(np.uint8)
    mse = np.mean((a.astype(float) - b) ** 2)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse))
    assert 33 < psnr(a, b) < 36  # ±5 everywhere (except clipped pixels) → about 34.2 dB


def test_frechet_distance(analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # a pure shift by 1 in each of 8 dimensions: |Δμ|² = 8, covariance term 0
    assert frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=1e-6)
    assert frechet_distance(a, 2.0 * a) > 1.0
    # real identity embeddings (singular covariance: n < 128)
    embs = []
    for img in (astronaut, hopper):
        for k in range(3):
            f = analyzer.get(cv2.GaussianBlur(img, (0, 0), 0.5 + k) if k else img)[0]
            embs.append(f.embedding)
    e = np.array(embs)
    assert frechet_distance(e, e) == pytest.approx(0.0, abs=1e-4)
    assert frechet_distance(e[:3], e[3:]) > 0.1
    with pytest.raises(ValueError):
        frechet_distance(e[:1], e)


def test_retrieval_rank() -> None:
    g = {
        "a": [np.array([0.0, 0.0]), np.array([5.0, 5.0])],
        "b": [np.array([1.0, 0.0])],
        "c": [np.array([3.0, 0.0])],
    }
    q = np.array([0.9, 0.0])
    assert retrieval_rank(q, g, "b") == 1
    assert retrieval_rank(q, g, "a") == 2
    assert retrieval_rank(q, g, "c") == 3
    assert retrieval_rank(np.array([5.0, 4.9]), g, "a") == 1  # nearest photo of a person counts
    with pytest.raises(KeyError):
        retrieval_rank(q, g, "zzz")


# --------------------------------------------------------------------------------------- benchmarks


def test_shipped_benchmark_file_is_well_formed() -> None:
    text = (resources.files("masquerade") / "data/benchmarks/lfw_swap_v1.tsv").read_text()
    assert "make_lfw_benchmark.py --lfw ../shared/data/lfw --seed 0" in text
    rows = [r for r in csv.reader(io.StringIO(text), delimiter="\t") if r and not r[0].startswith("#")]
    assert rows[0] == ["kind", "source", "target", "source_other", "source_id", "target_id"]
    swap = [r for r in rows[1:] if r[0] == "swap"]
    selfp = [r for r in rows[1:] if r[0] == "self"]
    assert (len(swap), len(selfp), len(rows) - 1) == (100, 50, 150)
    people = [r[4] for r in swap] + [r[5] for r in swap] + [r[4] for r in selfp]
    assert len(set(people)) == 250  # nobody appears twice
    for _kind, src, tgt, other, sid, tid in swap:
        assert src.startswith(f"{sid}/{sid}_") and tgt.startswith(f"{tid}/{tid}_") and sid != tid
        assert other.startswith(f"{sid}/{sid}_") and other != src
    for _kind, src, tgt, other, sid, tid in selfp:
        assert src == tgt and other == "-" and sid == tid


def test_pairs_file_errors(tmp_path: Path) -> None:
    shutil.copy(ASTRONAUT, tmp_path / "a.jpg")
    bad = tmp_path / "bad.tsv"
    bad.write_text("# comment\nswap\ta.jpg\ta.jpg\nmirror\ta.jpg\ta.jpg\n")
    with pytest.raises(InputError, match=r"bad.tsv:3: kind must be"):
        load_pairs(bad)
    bad.write_text("swap\ta.jpg\n")
    with pytest.raises(InputError, match=r"bad.tsv:1: expected 3 to 8"):
        load_pairs(bad)
    bad.write_text("swap\ta.jpg\tmissing.jpg\n")
    with pytest.raises(InputError, match=r"missing.jpg"):
        load_pairs(bad)
    with pytest.raises(InputError, match="no such pairs file"):
        load_pairs(tmp_path / "nope.tsv")
    with pytest.raises(InputError, match="neither a pairs file nor a shipped benchmark"):
        load_benchmark("lfw_swap_v9")
    with pytest.raises(InputError, match="needs the LFW folder"):
        load_benchmark("lfw_swap_v1")
    with pytest.raises(InputError, match="unknown swapper"):
        swapper_spec("magic")
    good = tmp_path / "good.tsv"
    good.write_text(f"kind\tsource\ttarget\nswap\ta.jpg\t{HOPPER}\nself\ta.jpg\ta.jpg\n")
    b = load_pairs(good)
    assert [p.kind for p in b.pairs] == ["swap", "self"]
    assert b.pairs[0].source == tmp_path / "a.jpg" and b.pairs[0].target == HOPPER
    assert b.pairs[0].source_id == "a.jpg" and b.pairs[1].target_id == "a.jpg"
    assert len(limit_pairs(b, 1).pairs) == 2


# ------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def sample_bench(tmp_path_factory: pytest.TempPathFactory) -> Benchmark:
    """Two swaps between the samples, a swap onto a faceless image, and two self pairs."""
    d = tmp_path_factory.mktemp("evalpairs")
    blank = np.full((300, 300, 3), 128, np.uint8)
    blank[100:200, 100:200] = (30, 160, 90)
    cv2.imwrite(str(d / "blank.png"), blank)
    shutil.copy(HOPPER, d / "hopper.jpg")
    rows = [
        "# sample pairs",
        "kind\tsource\ttarget\tsource_other\tsource_id\ttarget_id",
        f"swap\t{ASTRONAUT}\thopper.jpg\t-\tcollins\thopper",
        f"swap\thopper.jpg\t{ASTRONAUT}\t-\thopper\tcollins",
        f"swap\t{ASTRONAUT}\tblank.png\t-\tcollins\tnobody",
        f"self\t{ASTRONAUT}\t{ASTRONAUT}\t-\tcollins\tcollins",
        "self\thopper.jpg\thopper.jpg",
    ]
    (d / "pairs.tsv").write_text("\n".join(rows) + "\n")
    return load_pairs(d / "pairs.tsv")


@pytest.fixture(scope="module")
def sample_reports(sample_bench: Benchmark, analyzer: FaceAnalyzer) -> list[SwapperReport]:
    seen: list[tuple[str, int, int]] = []
    reports = evaluate(["mesh3d", "none"], sample_bench, analyzer, progress=lambda *a: seen.append(a))
    assert seen[-1][1] == seen[-1][2] == 3 + 2 * 5  # 3 distinct images, 2 swappers × 5 pairs
    return reports


def test_mesh3d_moves_identity_towards_the_source(sample_reports: list[SwapperReport]) -> None:
    mesh, none = sample_reports
    assert (mesh.label, none.label) == ("mesh3d", "none")
    ms, ns = mesh.aggregate["swap"], none.aggregate["swap"]
    assert ms["cos_src"]["mean"] > ns["cos_src"]["mean"] + 0.02
    assert ms["dist_src"]["mean"] < ns["dist_src"]["mean"] - 0.1
    assert ms["closer_to_source"] > ns["closer_to_source"]
    assert ns["closer_to_source"] == 0.0 and ns["dist_tgt"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert ms["top1"] == pytest.approx(2 / 3)  # the faceless pair is a retrieval miss
    assert ms["gallery_identities"] == 2
    assert ms["frechet_identity"]["n_outputs"] == 2 and ms["frechet_identity"]["value"] is not None
    for m in mesh.pairs:
        if m.kind == "swap" and m.failure is None:
            assert m.pose_err is not None and m.pose_err < 6.0
            assert m.expr_err is not None and m.expr_err < 0.08
    assert ns["pose_err"]["mean"] == pytest.approx(0.0, abs=1e-9)


def test_faceless_pair_is_a_reported_failure(sample_reports: list[SwapperReport]) -> None:
    for rep in sample_reports:
        bad = rep.pairs[2]
        assert bad.target.endswith("blank.png") and bad.failure is not None
        assert not bad.closer_to_source and not bad.top1 and not bad.top5 and bad.cos_src is None
        agg = rep.aggregate["swap"]
        assert agg["pairs"] == 3 and agg["failures"] == 1 and agg["cos_src"]["n"] == 2
        assert sum(agg["failure_kinds"].values()) == 1
    assert sample_reports[0].pairs[2].failure.startswith("swap failed")
    assert sample_reports[1].pairs[2].failure == "no face in target"


def test_self_pairs_ssim_psnr(sample_reports: list[SwapperReport]) -> None:
    mesh, none = sample_reports
    ms, ns = mesh.aggregate["self"], none.aggregate["self"]
    assert ms["pairs"] == 2 and ms["failures"] == 0
    assert ns["ssim"]["mean"] == pytest.approx(1.0) and ns["psnr"]["mean"] == 100.0
    assert 0.9 < ms["ssim_face"]["mean"] < 1.0 and ms["ssim"]["mean"] >= ms["ssim_face"]["mean"]
    assert 25.0 < ms["psnr_face"]["mean"] < 100.0
    assert ms["cos_tgt"]["mean"] > 0.9


@pytest.mark.slow
def test_report_files(sample_reports: list[SwapperReport], sample_bench: Benchmark, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    written = write_report(sample_reports, out, sample_bench)
    names = {p.name for p in written}
    assert {"report.md", "results.json", "identity_cosine.png", "retrieval.png"} <= names
    assert {"pose_expression.png", "self_swap.png"} <= names
    for n in names:
        if n.endswith(".png"):
            assert (out / n).read_bytes()[:8] == PNG_MAGIC
    doc = json.loads((out / "results.json").read_text())
    assert [s["swapper"]["name"] for s in doc["swappers"]] == ["mesh3d", "none"]
    assert len(doc["swappers"][0]["pairs"]) == 5 and doc["benchmark"]["pairs"] == {"swap": 3, "self": 2}
    md = (out / "report.md").read_text()
    assert "| metric | `mesh3d` | `none` |" in md
    assert "## Failures" in md and "blank.png" in md
    assert "not FID" in md
    tables: list[list[str]] = [[]]
    for line in md.splitlines():
        if line.startswith("|"):
            tables[-1].append(line)
        elif tables[-1]:
            tables.append([])
    for t in filter(None, tables):  # every row has its header's cell count (no stray "|")
        assert all(r.count("|") == t[0].count("|") for r in t), t
    with pytest.raises(OutputError, match="not empty"):
        write_report(sample_reports, out, sample_bench)
    write_report(sample_reports, out, sample_bench, force=True)


def test_cli_evaluate(sample_bench: Benchmark, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = sample_bench.path
    out = tmp_path / "cli"
    code = main(["evaluate", "--pairs", str(pairs), "--swapper", "none", "--out", str(out), "--limit", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "none:" in err and (out / "report.md").is_file() and (out / "retrieval.png").is_file()
    doc = json.loads((out / "results.json").read_text())
    assert doc["benchmark"]["pairs"] == {"swap": 1, "self": 1}
    assert "--swapper none" in doc["environment"]["command"]
    # a non-empty folder is refused before any work, with one line
    code = main(["evaluate", "--pairs", str(pairs), "--swapper", "none", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--force" in err
    # an unreadable image: one line naming the file and the pair's line
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    pf = tmp_path / "p.tsv"
    pf.write_text(f"swap\t{ASTRONAUT}\t{bad}\n")
    code = main(["evaluate", "--pairs", str(pf), "--swapper", "none", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "broken.jpg" in err and "line 1" in err
    assert not (tmp_path / "x").exists()
    code = main(["evaluate", "--pairs", str(pf), "--swapper", "bogus", "--out", str(tmp_path / "y")])
    assert code == 2 and "unknown swapper" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_evaluate_takes_the_swappers_own_options(
    sample_bench: Benchmark, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``evaluate`` checks and passes a swapper's options as ``swap`` does: they reach the swapper (other
    strengths, other outputs) and the run records the options it used."""
    pairs = str(sample_bench.path)
    code = main(
        ["evaluate", "--pairs", pairs, "--swapper", "mesh3d", "--steps", "3", "--out", str(tmp_path / "a")]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--steps goes with --swapper diffusion" in err
    dist = {}
    for strength in ("0", "1"):
        out = tmp_path / f"s{strength}"
        # occlusion off: with it the astronaut's fringe is left out of both swaps, and their distances to
        # her happen to come out within 2e-4 of each other
        args = ["--swapper", "mesh3d", "--shape-strength", strength, "--expression-strength", strength]
        args += ["--occlusion", "off", "--limit", "1"]
        code = main(["evaluate", "--pairs", pairs, *args, "--out", str(out)])
        assert code == 0, capsys.readouterr().err
        doc = json.loads((out / "results.json").read_text())
        sw = doc["swappers"][0]
        assert sw["swapper"]["options"]["swapper_options"]["shape_strength"] == float(strength)
        assert sw["swapper"]["options"].get("occlusion", False) is False
        assert f"--shape-strength {strength}" in doc["environment"]["command"]
        assert "--occlusion off" in doc["environment"]["command"]
        dist[strength] = sw["aggregate"]["swap"]["dist_src"]["mean"]
    assert abs(dist["1"] - dist["0"]) > 1e-3  # the options reached the swapper


# ------------------------------------------------------------------------------- user ONNX models


def _onnx_models(folder: Path) -> tuple[Path, Path]:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    feat = helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"]),
        ],
        "tiny_features",
        [x],
        [feat],
    )
    fmodel = folder / "tiny_features.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), fmodel)

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, "h", "w"])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, "h", "w"])
    d = helper.make_tensor_value_info("d", TensorProto.FLOAT, [])
    g = helper.make_graph(
        [
            helper.make_node("Sub", ["a", "b"], ["s"]),
            helper.make_node("Mul", ["s", "s"], ["q"]),
            helper.make_node("ReduceMean", ["q"], ["d"], keepdims=0),
        ],
        "tiny_distance",
        [a, b],
        [d],
    )
    dmodel = folder / "tiny_distance.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), dmodel)
    return fmodel, dmodel


@pytest.mark.slow
def test_onnx_models_are_labelled_by_file_and_hash(
    tmp_path: Path, sample_bench: Benchmark, analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    fpath, dpath = _onnx_models(tmp_path)
    fm = OnnxImageModel(fpath, inputs=1)
    assert fm.size == (32, 32)  # from the graph's static shape
    small = cv2.resize(astronaut, (32, 32), interpolation=cv2.INTER_LINEAR)
    assert np.allclose(fm.features(astronaut), small.reshape(-1, 3).mean(0) / 255.0, atol=1e-5)
    with pytest.raises(InputError, match="expected a distance model"):
        OnnxImageModel(fpath, inputs=2)
    with pytest.raises(InputError, match="input size is dynamic"):
        OnnxImageModel(dpath, inputs=2)
    dpath.with_suffix(".json").write_text(json.dumps({"size": [24, 24], "mean": [0.5] * 3, "std": [0.5] * 3}))
    dm = OnnxImageModel(dpath, inputs=2)
    assert dm.size == (24, 24)
    assert dm.distance(astronaut, astronaut) == 0.0 and dm.distance(astronaut, hopper) > 0.01

    bench = limit_pairs(sample_bench, 2)
    rep = evaluate(["none"], bench, analyzer, fid_model=fm, lpips_model=dm)[0]
    fo = rep.aggregate["swap"]["frechet_onnx"]
    assert fo["model"]["sha256"] == hashlib.sha256(fpath.read_bytes()).hexdigest()
    assert fo["model"]["file"] == "tiny_features.onnx" and fo["value"] == pytest.approx(0.0, abs=1e-9)
    lp = rep.aggregate["self"]["lpips_onnx"]
    assert lp["mean"] == 0.0 and lp["model"]["sha256"] == hashlib.sha256(dpath.read_bytes()).hexdigest()
    out = tmp_path / "rep"
    write_report([rep], out, bench)
    md = (out / "report.md").read_text()
    assert f"`tiny_features.onnx` (sha256 {fo['model']['sha256'][:12]}" in md
    assert f"`tiny_distance.onnx` (sha256 {lp['model']['sha256'][:12]}" in md
    assert "LPIPS" not in md and "Inception" not in md  # nothing is called what it may not be


# ------------------------------------------------------------------------------------------- video


@pytest.mark.slow
def test_video_jitter_and_flicker(tmp_path: Path, analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    from masquerade.video.writer import VideoWriter

    clip = tmp_path / "clip.mp4"
    w = VideoWriter(clip, 10.0)
    base = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    for i in range(14):
        m = np.float32([[1, 0, 3 * np.sin(i / 3)], [0, 1, 2 * np.cos(i / 4)]])
        w.write(cv2.warpAffine(base, m, (320, 320), borderMode=cv2.BORDER_REPLICATE), i / 10)
    w.close()
    pair = VideoPairSpec(HOPPER, clip)
    vm = evaluate_video(swapper_spec("mesh3d"), pair, analyzer)
    assert vm.failure is None and vm.frames == 14 and vm.frames_swapped >= 12
    assert vm.jitter_input is not None and vm.jitter_output is not None and vm.jitter_ratio is not None
    assert 0.2 < vm.jitter_ratio < 5.0 and vm.flicker_ratio is not None
    none = evaluate_video(swapper_spec("none"), pair, analyzer)
    assert none.jitter_ratio == pytest.approx(1.0) and none.frames == 14
    skipped = evaluate_video(swapper_spec("source"), pair, analyzer)
    assert skipped.skipped == "not applicable to video" and skipped.failure is None


# --------------------------------------------------------------------------------------------- LFW


@pytest.mark.slow  # LFW
@pytest.mark.lfw
def test_lfw_benchmark_pairs(lfw: Path, analyzer: FaceAnalyzer) -> None:
    bench = load_benchmark("lfw_swap_v1", lfw)
    assert bench.counts() == {"swap": 100, "self": 50}
    small = limit_pairs(bench, 4)
    mesh, none = evaluate(["mesh3d", "none"], small.pairs[:5], analyzer)
    assert mesh.aggregate["swap"]["pairs"] == 4 and mesh.aggregate["self"]["pairs"] == 1
    assert mesh.aggregate["swap"]["cos_src"]["mean"] > none.aggregate["swap"]["cos_src"]["mean"]
    assert mesh.aggregate["swap"]["closer_to_source"] >= 0.5 > none.aggregate["swap"]["closer_to_source"]
    # the shipped file is exactly what the script makes from this LFW copy
    spec = importlib.util.spec_from_file_location(
        "make_lfw_benchmark", REPO / "scripts/make_lfw_benchmark.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.build(lfw, 0, 100, 50, "lfw_swap_v1")
    assert text == (resources.files("masquerade") / "data/benchmarks/lfw_swap_v1.tsv").read_text()


def test_gallery_rows_add_distractor_identities(tmp_path: Path, analyzer: FaceAnalyzer) -> None:
    """With only one swapped identity, retrieval is trivially right; gallery rows make it a test."""
    shutil.copy(HOPPER, tmp_path / "hopper.jpg")
    cv2.imwrite(str(tmp_path / "hopper_blur.png"), cv2.GaussianBlur(cv2.imread(str(HOPPER)), (0, 0), 1.0))
    pair = f"swap\t{ASTRONAUT}\thopper.jpg\t-\tcollins\thopper\n"
    (tmp_path / "plain.tsv").write_text(pair)
    (tmp_path / "gallery.tsv").write_text(pair + "gallery\thopper_blur.png\t-\t-\thopper\n")
    plain, with_gallery = load_pairs(tmp_path / "plain.tsv"), load_pairs(tmp_path / "gallery.tsv")
    assert len(with_gallery.pairs) == 1 and with_gallery.gallery[0].identity == "hopper"
    assert with_gallery.describe()["gallery_identities"] == 1
    # the `none` baseline outputs the target (Hopper): alone in the gallery, Collins still ranks first
    (r0,) = evaluate(["none"], plain, analyzer)
    assert r0.aggregate["swap"]["gallery_identities"] == 1 and r0.aggregate["swap"]["top1"] == 1.0
    (r1,) = evaluate(["none"], with_gallery, analyzer)
    assert r1.aggregate["swap"]["gallery_identities"] == 2 and r1.aggregate["swap"]["top1"] == 0.0
    (tmp_path / "bad.tsv").write_text(pair + "gallery\tmissing.png\t-\t-\tx\n")
    with pytest.raises(InputError, match="missing"):
        load_pairs(tmp_path / "bad.tsv")
