"""``GET /api/options`` and the swappers' own options (``GET /api/swappers``, ``options`` of a job or a
preview): one declaration of every choice, shared by the command line, the API and the page."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest
from test_server import _client, _one_line_error
from test_server import _uploaded as _upload

from masquerade import sample_path
from masquerade.cli.main import build_parser
from masquerade.job import BLENDS, CODECS, COLOURS, MASKS, PRESETS
from masquerade.server.app import ServerConfig
from masquerade.server.requests import JobRequest


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cfg = ServerConfig(
        data=tmp_path_factory.mktemp("options"), concurrency=0, queue_size=8, allow_no_provenance=True
    )
    with _client(cfg) as c:
        yield c


def test_options_come_from_the_job_body(server, tmp_path) -> None:
    answer = server.get("/api/options").json()
    assert answer["provenance_optional"] is True
    opts = {o["name"]: o for o in answer["common"]}
    assert list(opts) == [
        "mask", "mask_erode", "mask_blur", "colour", "blend", "occlusion", "quality",
        "codec", "crf", "preset", "detect_every", "smooth",
    ]  # fmt: skip
    assert opts["mask"] == {
        "name": "mask", "type": "str", "default": "face", "choices": ["face", "skin"], "minimum": None,
        "maximum": None, "help": opts["mask"]["help"], "applies": "all",
    }  # fmt: skip
    assert (opts["colour"]["choices"], opts["blend"]["choices"]) == (list(COLOURS), list(BLENDS))
    assert (opts["codec"]["choices"], opts["preset"]["choices"]) == (list(CODECS), list(PRESETS))

    def bounds(name: str) -> tuple[str, object, object]:
        return opts[name]["applies"], opts[name]["minimum"], opts[name]["maximum"]

    assert bounds("quality") == ("image", 1, 100) and bounds("crf") == ("video", 0, 51)
    assert bounds("mask_erode") == ("all", 0, 0.3) and opts["mask_erode"]["type"] == "float"
    assert opts["detect_every"]["minimum"] == 1 and opts["detect_every"]["maximum"] is None
    assert opts["occlusion"]["type"] == "bool" and opts["occlusion"]["default"] is True
    assert opts["smooth"]["applies"] == "video" and opts["blend"]["applies"] == "all"
    for o in opts.values():
        assert o["help"] and o["default"] == JobRequest.model_fields[o["name"]].default
    # the bounds are the body's: a value past one is refused in one line
    r = server.post("/api/jobs", json={"target": "x", "mask_blur": 0.5})
    _one_line_error(r, 422, "mask_blur")
    other = _client(ServerConfig(data=tmp_path, concurrency=0))
    assert other.get("/api/options").json()["provenance_optional"] is False


def test_swappers_list_their_options_defaults_and_choices(server) -> None:
    mesh3d = next(d for d in server.get("/api/swappers").json()["details"] if d["name"] == "mesh3d")
    opts = {o["name"]: o for o in mesh3d["options"]}
    assert opts["gaze"]["choices"] == ["target", "source"] and opts["gaze"]["default"] == "target"
    assert opts["fill"]["choices"] == ["mirror", "target"] and opts["fill"]["default"] == "mirror"
    assert opts["shape_strength"]["type"] == "float" and opts["shape_strength"]["default"] == 1.0
    assert opts["shape_strength"]["choices"] is None


def test_word_options_reach_the_swap_and_bad_values_are_refused(server) -> None:
    src = _upload(server, sample_path("grace_hopper"), "hopper.jpg")
    tgt = _upload(server, sample_path("astronaut"), "astronaut.jpg")
    body = {"source": src["id"], "target": tgt["id"], "provenance": False}

    def preview(options: dict) -> np.ndarray:
        r = server.post("/api/preview", json={**body, "options": options})
        assert r.status_code == 200, r.text
        return cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR).astype(np.int16)

    # the irises where the source looks instead of where the target does: a change in the face only
    x0, y0, x1, y1 = (int(v) for v in tgt["faces"][0]["box"])
    target_gaze, source_gaze = preview({"gaze": "target"}), preview({"gaze": "source"})
    changed = np.abs(target_gaze - source_gaze).max(axis=2) > 8
    assert changed[y0:y1, x0:x1].sum() > 20
    changed[y0 - 16 : y1 + 16, x0 - 16 : x1 + 16] = False  # (JPEG blocks reach a little past the box)
    assert not changed.any()
    assert np.array_equal(preview({}), target_gaze)  # the default
    for bad, needle in (
        ({"gaze": "sideways"}, "gaze must be target or source"),
        ({"gaze": 1}, "--gaze takes a word (target, source), not 1"),
        ({"shape_strength": "high"}, "--shape-strength takes a number"),
        ({"shape_strength": True}, "options.shape_strength"),
        ({"steps": 5}, "--steps goes with --swapper diffusion"),
    ):
        _one_line_error(server.post("/api/preview", json={**body, "options": bad}), 422, needle)
        _one_line_error(server.post("/api/jobs", json={**body, "options": bad}), 422, needle)
    job = server.post("/api/jobs", json={**body, "options": {"gaze": "source", "shape_strength": 1}})
    assert job.status_code == 202, job.text


def test_the_command_line_takes_the_same_choices() -> None:
    parser = build_parser()
    swap = next(
        a for a in parser._subparsers._group_actions[0].choices["swap"]._actions  # type: ignore[union-attr]
        if "--mask" in a.option_strings
    )  # fmt: skip
    assert swap.choices == MASKS == ("face", "skin")
    args = parser.parse_args(["swap", "-s", "a.jpg", "-t", "b.jpg", "-o", "c.jpg", "--mask", "skin"])
    assert args.mask == "skin"
    for bad in (["--mask", "eyes"], ["--gaze", "up"], ["--preset", "placebo"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["swap", "-s", "a.jpg", "-t", "b.jpg", "-o", "c.jpg", *bad])
    assert isinstance(parser, argparse.ArgumentParser)
