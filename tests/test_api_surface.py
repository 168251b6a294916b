"""The public surface: the ``masquerade`` facade, the stage packages, and every import the README shows.

Moving a module must not break what users import: the facade's names, the packages that name the
pipeline's stages, and the README's Python snippets are checked here (imports only: no model is loaded).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import masquerade

ROOT = Path(__file__).resolve().parents[1]

FACADE = {
    "AnalyzerOptions", "Face", "FaceAnalyzer", "FaceSwapper", "InputError", "LoadedImage",
    "MasqueradeError", "ModelError", "NoFaceError", "OutputError", "OutputStamp", "Pose",
    "ProvenanceOptions", "ProvenanceRecord", "SwapOptions", "SwapReport", "__version__", "analyze",
    "cosine_similarity", "euclidean_distance",
    "evaluate", "load_benchmark", "load_image", "sample_path", "save_image", "save_swapped", "swap_image",
    "write_report",
}  # fmt: skip

# the stages of the data flow, each a package (image → faces → patch + mask → composite → writer)
STAGES = {
    "analysis": ["detection", "landmarks", "geometry", "regions", "alignment", "selection", "analyzer"],
    "identity": ["encoder", "dlibnet", "onnx_net"],
    "swappers": [
        "base",
        "mesh3d",
        "autoencoder",
        "generator",
        "diffusion",
        "external",
        "model_card",
        "aligned",
    ],
    "compose": ["masks", "colour", "blending"],
    "video": ["probe", "transcode", "writer", "parts", "tracking", "smoothing", "swap", "segments", "live",
              "temporal"],
    "run": ["batch", "ray_backend"],
    "provenance": ["watermark", "manifest", "credentials", "signing", "verification", "c2pa", "stamp"],
    "evaluation": ["metrics", "onnx_models", "benchmarks", "results", "run", "report"],
    "faceset": ["format", "extract"],
    "cli": ["main", "extract", "serve", "train"],
    "server": ["app", "runner", "store"],
    "training": ["configs", "data", "losses", "trainer", "common"],
}  # fmt: skip


def test_facade_names() -> None:
    assert set(masquerade.__all__) >= FACADE
    for name in masquerade.__all__:
        assert getattr(masquerade, name) is not None, name


@pytest.mark.parametrize("package", sorted(STAGES))
def test_stage_packages(package: str) -> None:
    pkg = importlib.import_module(f"masquerade.{package}")
    assert Path(pkg.__file__).name == "__init__.py", f"masquerade.{package} should be a package"
    assert (pkg.__doc__ or "").strip(), f"masquerade.{package} needs a docstring saying what the stage does"
    for module in STAGES[package]:
        if package == "training" and importlib.util.find_spec("torch") is None:
            continue
        importlib.import_module(f"masquerade.{package}.{module}")


def _readme_imports() -> list[tuple[str, list[str]]]:
    text = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.S):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("masquerade"):
                found.append((node.module, [a.name for a in node.names]))
            elif isinstance(node, ast.Import):
                found += [(a.name, []) for a in node.names if a.name.startswith("masquerade")]
    return found


def test_readme_python_imports_resolve() -> None:
    imports = _readme_imports()
    assert len(imports) >= 5  # the README's Python section shows the API
    for module, names in imports:
        mod = importlib.import_module(module)
        for name in names:
            assert hasattr(mod, name), f"README imports {name} from {module}, which has no such name"


def test_console_script_entry_point() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    target = re.search(r'^masquerade = "([\w.]+):(\w+)"', text, flags=re.M)
    assert target is not None
    assert callable(getattr(importlib.import_module(target.group(1)), target.group(2)))


def test_top_level_holds_only_the_shared_pieces() -> None:
    """Stage code lives in the stage packages; the top level keeps the records, errors and facade."""
    top = {p.stem for p in (ROOT / "src" / "masquerade").glob("*.py")}
    shared = {"__init__", "__main__", "_native", "errors", "face", "files", "imageio", "job", "models",
              "pipeline", "samples"}  # fmt: skip
    assert top <= shared, f"modules outside the stage packages: {sorted(top - shared)}"


def test_command_line_start_up_skips_what_it_does_not_use(tmp_path: Path) -> None:
    """A swap's process imports neither the evaluation suite nor matplotlib (mediapipe pulls it in for
    drawing helpers: about a second of every start), nor mediapipe's solutions it does not use (0.15 s),
    nor scipy (0.1 s) nor the cryptography package (0.1 s: masquerade's own signing key is read, not
    checked again); and matplotlib and those solutions still import normally later."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import masquerade.cli.main\n"
        "from masquerade.analysis.detection import FaceDetector\n"
        "from masquerade.analysis.landmarks import MeshLandmarker\n"
        "from masquerade.provenance.stamp import OutputStamp, ProvenanceOptions\n"
        "from masquerade.provenance.credentials import local_signing_config\n"
        "d = FaceDetector(); m = MeshLandmarker()\n"
        "import numpy as np\n"
        "y = np.full((256, 256), 99, np.uint8)\n"
        "stamp = OutputStamp('mesh3d', ProvenanceOptions())\n"
        "stamp.video_marker().mark_luma(y)\n"
        "local_signing_config()\n"  # the key made below: checked, not made
        f"stamp.write_image({str(tmp_path / 'out.jpg')!r}, np.full((256, 256, 3), 99, np.uint8))\n"
        "assert stamp.record.c2pa == 'embedded', stamp.record\n"
        "unused = tuple('mediapipe.python.solutions.' + n for n in"
        " ('holistic', 'objectron', 'pose', 'selfie_segmentation', 'drawing_utils'))\n"
        "loaded = sorted(n for n in sys.modules if n.split('.')[0] in ('matplotlib', 'scipy', 'cryptography')"
        " or n.startswith(('masquerade.evaluation', 'mediapipe.tasks'))"
        " or n in unused)\n"
        "print('loaded:', loaded)\n"
        "import matplotlib.pyplot, mediapipe.tasks.python.vision\n"
        "import mediapipe as mp\n"
        "print('later:', callable(matplotlib.pyplot.plot), mp.solutions.pose.Pose.__name__)\n"
    )
    from masquerade.provenance.credentials import local_signing_config

    local_signing_config()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert "loaded: []" in out.stdout, out.stdout
    assert "later: True Pose" in out.stdout, out.stdout
