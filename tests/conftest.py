from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from masquerade import FaceAnalyzer, FaceSwapper, load_image, sample_path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LFW = SHARED / "lfw"
CELEBA = SHARED / "celeba"

_OWN_CONFIG = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Outputs are signed by default: give the whole run (and the CLI processes it starts) a throwaway
    C2PA key instead of making one in the user's ~/.config."""
    import os
    import tempfile

    if "MASQUERADE_CONFIG" not in os.environ:
        os.environ["MASQUERADE_CONFIG"] = tempfile.mkdtemp(prefix="masquerade-test-config-")
        config.stash[_OWN_CONFIG] = os.environ["MASQUERADE_CONFIG"]


def pytest_unconfigure(config: pytest.Config) -> None:
    """The throwaway configuration folder made above goes with the run."""
    import shutil

    own = config.stash.get(_OWN_CONFIG, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return load_image(sample_path("astronaut")).rgb


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    return load_image(sample_path("grace_hopper")).rgb


@pytest.fixture(scope="session")
def source(hopper: np.ndarray) -> tuple[np.ndarray, object]:
    """Grace Hopper as a video/batch source: (rgb, her face)."""
    with FaceAnalyzer(identity=False) as fa:
        return hopper, FaceSwapper(analyzer=fa).source_face(hopper)


# ---- the identity-data trainers' tests (generator, diffusion): a tiny folder of people (its faces at
# identity_fixtures.RES)


@pytest.fixture(scope="session")
def people(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from identity_fixtures import make_people

    return make_people(tmp_path_factory.mktemp("people") / "data")


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("face-cache")


@pytest.fixture(scope="session")
def faces(people: Path, cache: Path):
    from identity_fixtures import RES

    from masquerade.training.identity_data import load_identity_faces, scan_identity_folder

    return load_identity_faces(scan_identity_folder(people), RES, "ffhq", cache=cache)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models gain nothing from more threads on a shared CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    fa = FaceAnalyzer().prepare()
    yield fa
    fa.close()


@pytest.fixture(scope="session")
def swapper() -> FaceSwapper:
    fs = FaceSwapper()
    yield fs
    fs.close()


@pytest.fixture(scope="session")
def pair_image(astronaut: np.ndarray, hopper: np.ndarray) -> np.ndarray:
    """Both sample faces side by side on one 1100×600 canvas (astronaut left, Hopper right)."""
    canvas = np.full((600, 1100, 3), 90, np.uint8)
    canvas[40:552, 20:532] = astronaut
    canvas[0:600, 570:1082] = hopper
    return canvas


@pytest.fixture(scope="session")
def lfw() -> Path:
    if not (LFW / "images").is_dir():
        pytest.skip(f"LFW not available at {LFW} (../shared/data/lfw beside the repo)")
    return LFW


@pytest.fixture(scope="session")
def celeba() -> Path:
    if not (CELEBA / "images").is_dir():
        pytest.skip(f"CelebA not available at {CELEBA} (../shared/data/celeba beside the repo)")
    return CELEBA


def lfw_image(root: Path, name: str, n: int) -> np.ndarray:
    return load_image(root / "images" / name / f"{name}_{n:04d}.jpg").rgb


def lfw_pairs(root: Path, matched: bool, count: int) -> list[tuple[str, int, str, int]]:
    """The first ``count`` matched or mismatched pairs of the official pairs.txt (fold order)."""
    out: list[tuple[str, int, str, int]] = []
    for line in (root / "pairs.txt").read_text().splitlines()[1:]:
        f = line.split()
        if matched and len(f) == 3:
            out.append((f[0], int(f[1]), f[0], int(f[2])))
        elif not matched and len(f) == 4:
            out.append((f[0], int(f[1]), f[2], int(f[3])))
        if len(out) >= count:
            break
    return out


def rotate(rgb: np.ndarray, degrees_clockwise: float) -> np.ndarray:
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees_clockwise, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
