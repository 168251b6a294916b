"""The realism metrics against hand-computed cases, the paired comparison, and benchmark rows with
occluders and subset tags."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from masquerade import FaceAnalyzer, InputError, SwapOptions
from masquerade.evaluation import load_pairs
from masquerade.evaluation.compare import bootstrap_interval, compare_figure, sign_test
from masquerade.evaluation.metrics import (
    GAZE_EYES,
    colour_error,
    face_region,
    gaze_error,
    gaze_vector,
    masked_psnr,
    masked_ssim,
    occluder_survival,
    sharpness_ratio,
)
from masquerade.evaluation.results import PairMetrics, SwapperReport, SwapperSpec
from masquerade.occlusion.synthetic import make_occluder


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray):
    with FaceAnalyzer(identity=False) as fa:
        return fa.get(astronaut)[0]


def test_sharpness_ratio_sees_blur(astronaut: np.ndarray, face) -> None:
    region = face_region(astronaut.shape, face)
    assert sharpness_ratio(astronaut, astronaut, region) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(astronaut, (0, 0), 2.0)
    r = sharpness_ratio(blurred, astronaut, region)
    assert r is not None and r < 0.5
    # a blurry output can still score a high PSNR: that is why the ratio exists
    assert masked_psnr(blurred, astronaut, region) > 25
    noisy = np.clip(astronaut + np.random.default_rng(0).normal(0, 12, astronaut.shape), 0, 255).astype(
        np.uint8
    )
    assert sharpness_ratio(noisy, astronaut, region) > 1.1


def test_masked_ssim_psnr_and_colour_only_look_inside_the_mask(astronaut: np.ndarray, face) -> None:
    region = face_region(astronaut.shape, face)
    other = astronaut.copy()
    other[~region] = 0  # changes outside the face do not count
    assert masked_ssim(
        other, astronaut, cv2.erode(region.astype(np.uint8), np.ones((15, 15))) > 0
    ) == pytest.approx(1.0)
    assert masked_psnr(other, astronaut, region) == 100.0
    assert colour_error(other, astronaut, region) == pytest.approx(0.0, abs=1e-6)
    shifted = astronaut.copy()
    shifted[region] = np.clip(shifted[region].astype(int) + np.array([30, 0, 0]), 0, 255)
    de = colour_error(shifted, astronaut, region)
    assert 5 < de < 40
    assert masked_ssim(shifted, astronaut, region) < 1.0


def test_gaze_error_of_a_mirrored_iris(face) -> None:
    """Move each iris to its mirror position across the eye's centre: the error is twice the offset."""
    mesh = face.mesh.copy()
    g = gaze_vector(mesh)
    assert g is not None and np.all((g[:, 0] > 0.2) & (g[:, 0] < 0.8))  # irises sit inside the eyes
    moved = mesh.copy()
    expected = []
    for outer, inner, _, _, iris in GAZE_EYES:
        a, b = mesh[outer, :2], mesh[inner, :2]
        mid = (a + b) / 2
        moved[iris, :2] = 2 * mid - mesh[iris, :2]  # point reflection through the corners' midpoint
        width = np.linalg.norm(b - a)
        expected.append(2 * np.linalg.norm(mesh[iris, :2] - mid) / width)
    err = gaze_error(replace(face, mesh=moved), face)
    assert err == pytest.approx(float(np.mean(expected)), rel=1e-6)
    assert gaze_error(face, face) == 0.0


def test_occluder_survival_kept_and_painted_over(astronaut: np.ndarray, face) -> None:
    layer = make_occluder("hand", 5, face.landmarks_68, astronaut.shape)
    occluded = layer.over(astronaut)
    painted = cv2.GaussianBlur(astronaut, (0, 0), 3.0)  # stands for the swap of the clean target
    painted = np.where(face_region(astronaut.shape, face)[..., None], 255 - painted, painted).astype(np.uint8)
    mask = layer.mask & face_region(astronaut.shape, face)
    assert occluder_survival(occluded, occluded, painted, mask) == 1.0
    assert occluder_survival(painted, occluded, painted, mask) == 0.0
    half = ((occluded.astype(int) + painted) // 2).astype(np.uint8)
    assert occluder_survival(half, occluded, painted, mask) == pytest.approx(0.5, abs=0.02)
    assert occluder_survival(occluded, occluded, occluded, mask) is None  # nothing to survive


def test_sign_test_and_bootstrap() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert sign_test(10, 0) == pytest.approx(2 / 1024)
    # 2 points on 100 pairs (2 wins, 0 losses) is not significant
    assert sign_test(2, 0) == 0.5
    lo, hi = bootstrap_interval(np.full(50, 0.3))
    assert lo == pytest.approx(0.3) and hi == pytest.approx(0.3)
    lo, hi = bootstrap_interval(np.random.default_rng(1).normal(0, 1, 200))
    assert lo < 0 < hi


def _report(label: str, kind: str, values: list[float | None], flags: list[bool]) -> SwapperReport:
    r = SwapperReport(SwapperSpec("none", label=label))
    for i, (v, f) in enumerate(zip(values, flags, strict=True)):
        r.pairs.append(PairMetrics(i, kind, "s", "t", "id", pose_err=v, closer_to_source=f))
    return r


def test_compare_figure_verdicts() -> None:
    rng = np.random.default_rng(0)
    base = list(rng.uniform(1, 2, 100))
    a = _report("a", "swap", base, [True] * 50 + [False] * 50)
    better = _report("b", "swap", [x - 0.3 for x in base], [True] * 52 + [False] * 48)
    c = compare_figure(a, better, "swap", "pose_err", "pose", False, False)
    assert c is not None and c.verdict == "b better" and c.diff == pytest.approx(-0.3)
    c = compare_figure(a, better, "swap", "closer_to_source", "closer", True, True)
    assert c is not None and c.verdict == "no clear difference" and c.diff == pytest.approx(0.02)
    noisy = _report("b", "swap", [x + rng.normal(0, 0.01) for x in base], [True] * 50 + [False] * 50)
    c = compare_figure(a, noisy, "swap", "pose_err", "pose", False, False)
    assert c is not None and c.verdict == "no clear difference"
    assert compare_figure(a, better, "same", "pose_err", "pose", False, False) is None


def test_pairs_with_occluders_and_tags(tmp_path: Path, astronaut: np.ndarray) -> None:
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), astronaut)
    f = tmp_path / "pairs.tsv"
    f.write_text(
        "occ_target\ta.png\tb.png\t-\tA\tB\thand:3\tlarge_pose,small_face\n"
        "same\ta.png\tb.png\t-\tA\tA\t-\topen_mouth\n"
    )
    bench = load_pairs(f)
    assert [p.kind for p in bench.pairs] == ["occ_target", "same"]
    assert bench.pairs[0].occluder == "hand:3" and bench.pairs[0].tags == ("large_pose", "small_face")
    assert bench.pairs[1].occluder is None and bench.pairs[1].tags == ("open_mouth",)
    for row, msg in (
        ("occ_source\ta.png\tb.png\t-\tA\tB\t-\t-\n", "needs an occluder"),
        ("swap\ta.png\tb.png\t-\tA\tB\thand:3\t-\n", "only occ_target and occ_source"),
        ("occ_source\ta.png\tb.png\t-\tA\tB\tlamp:3\t-\n", "KIND:SEED"),
    ):
        f.write_text(row)
        with pytest.raises(InputError, match=msg):
            load_pairs(f)


def test_evaluate_same_person_and_occluder_pairs(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    """End to end on the samples (different sizes): occluder pairs for every swapper and baseline, the
    same-person measures, grids and the comparison in the report."""
    from masquerade.evaluation import evaluate, write_report

    cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "h.png"), cv2.cvtColor(hopper[:500, :440], cv2.COLOR_RGB2BGR))
    f = tmp_path / "pairs.tsv"
    f.write_text(
        "swap\th.png\ta.png\t-\tH\tA\t-\tsmall_face\n"
        "same\ta.png\ta.png\t-\tA\tA\t-\tsmall_face,source_occluded\n"
        "occ_target\th.png\ta.png\t-\tH\tA\thand:1\t-\n"
        "occ_source\th.png\ta.png\t-\tH\tA\tglasses:2\t-\n"
    )
    bench = load_pairs(f)
    mesh, none, src = evaluate([SwapOptions(swapper="mesh3d", occlusion=False), "none", "source"], bench)
    assert none.aggregate["occ_target"]["occ_survival"]["mean"] == 1.0
    assert mesh.aggregate["occ_target"]["occ_survival"]["mean"] < 0.9  # occlusion off: painted over
    assert none.aggregate["occ_source"]["occ_source_err"]["mean"] == 0.0
    assert mesh.aggregate["occ_source"]["occ_source_err"]["mean"] > 1.0  # the glasses reach the output
    assert src.aggregate["occ_source"]["occ_source_err"]["n"] == 0  # not measurable on the source photo
    assert none.aggregate["same"]["ssim_region"]["mean"] == pytest.approx(1.0)
    assert mesh.aggregate["same"]["sharpness"]["mean"] > 0.5
    assert mesh.aggregate["subsets"]["small_face"]["swap"]["pairs"] == 1
    # derived: "unoccluded" holds the swap pair (no occlusion tag), not the same-person one
    assert mesh.aggregate["subsets"]["unoccluded"]["swap"]["pairs"] == 1
    assert "same" not in mesh.aggregate["subsets"]["unoccluded"]
    assert mesh.aggregate["subsets"]["source_occluded"]["same"]["pairs"] == 1
    files = {p.name for p in write_report([mesh, none], tmp_path / "report", bench)}
    assert {"grid-swap.jpg", "grid-same.jpg", "grid-occ_target.jpg", "grid-occ_source.jpg"} <= files
    assert "grid-swap-unoccluded.jpg" in files and "grid-same-unoccluded.jpg" not in files
    md = (tmp_path / "report" / "report.md").read_text()
    assert "**unoccluded** swap: pairs / closer to source / top-1 | 1 /" in md
    assert "## Synthetic occluders" in md and "compared pair by pair" in md and "grid-occ_source.jpg" in md
    grid = cv2.imread(str(tmp_path / "report" / "grid-occ_target.jpg"))
    assert grid.shape[1] == 4 * 160  # source | target | two swappers


def _script(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_celeba_benchmark_is_reproducible_from_its_script(celeba: Path) -> None:
    from importlib import resources

    counts = {"swap": 200, "same": 200, "occ_target": 100, "occ_source": 100}
    text = _script("make_celeba_benchmark").build(celeba, 0, 60, counts, "celeba_swap_v1")
    assert text == (resources.files("masquerade") / "data/benchmarks/celeba_swap_v1.tsv").read_text()


@pytest.mark.slow
@pytest.mark.lfw
def test_lfw_v2_benchmark_is_reproducible_from_its_script(lfw: Path) -> None:
    from importlib import resources

    text = _script("make_lfw_benchmark").build(lfw, 0, 100, 50, "lfw_swap_v2", 100, 50)
    assert text == (resources.files("masquerade") / "data/benchmarks/lfw_swap_v2.tsv").read_text()
    bench = load_pairs(resources.files("masquerade") / "data/benchmarks/lfw_swap_v2.tsv", lfw / "images")
    assert bench.counts() == {"swap": 100, "self": 50, "same": 100, "occ_target": 50, "occ_source": 50}
