"""Benchmark occlusion handling: the segmenter's quality and cost, and swaps with ``--occlusion on`` vs
``off`` on ``celeba_swap_v1``.

Usage (from the repository root)::

    python benchmarks/bench_occlusion.py --celeba ../shared/data/celeba --out benchmarks/out/occlusion \
        --swapper mesh3d --swapper refined --baseline none --baseline source

* Segmenter on synthetic occluders: every photo of ``celeba_swap_v1``'s held-out people (largest face)
  with one occluder per photo (the kinds in turn, seed = photo number; :mod:`masquerade.occlusion.
  synthetic`); IoU and recall of ``probability > ½`` against the occluder's exact mask, inside the face
  oval grown by 3 % of the crop, summed over all photos; per kind too.
  On the photos as they are, the ones where the sunglasses finder finds sunglasses and where the hair
  finder marks more than a tenth of the face oval are listed.
* Segmenter on real occluders: the 33 hand-drawn masks of ``data/benchmarks/celeba_occlusion_v1.json``
  (sunglasses, hands, microphones, bangs …), same measure; alone, with the hands mediapipe finds near
  the face added, with the hair over the forehead added too, and with dark sunglasses added as well
  (``Occlusion.crop_mask``, what swaps use).
* Pictures of real occluders (Grace Hopper swapped onto the hand-drawn photos): ``real-sunglasses.jpg``
  (where the sunglasses finder finds sunglasses: occlusion on with the finder off, and the default) and
  ``real-objects.jpg`` (microphones, a banana, a medal: occlusion off, and the default).
* Cost: median time of ``OcclusionSegmenter.crop_mask`` + ``image_mask`` per face on the 720p photo of
  ``bench_refiner.py`` (100 calls after 5 warm-up calls); and of ``Occlusion.target_mask`` (the segmenter
  with the hands, hair and sunglasses finders, as a photo swap runs them).
* Swaps: ``masquerade.evaluation.evaluate`` over ``celeba_swap_v1`` (``--kinds``, ``--limit`` per kind) with
  each of ``--swapper`` four times — occlusion off, on with the segmenter only (``--occlusion-hands off
  --occlusion-hair off --occlusion-glasses off``), on without the sunglasses finder
  (``--occlusion-glasses off``), and on — in one run; report folder with grids and the paired comparison
  in ``--out/swaps``; the same comparison of occlusion on against the segmenter only and against it
  without the sunglasses finder in ``--out/swaps/additions.md``.

Writes ``results.json`` and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from envinfo import environment

from masquerade import FaceAnalyzer, load_image
from masquerade.evaluation import evaluate, limit_pairs, load_benchmark, write_report
from masquerade.evaluation.compare import compare, comparison_lines
from masquerade.evaluation.results import SwapperSpec
from masquerade.occlusion.glasses import sunglasses_mask
from masquerade.occlusion.hair import hair_mask
from masquerade.occlusion.handling import Occlusion
from masquerade.occlusion.segmenter import OcclusionSegmenter, face_crop, oval_mask
from masquerade.occlusion.synthetic import OCCLUDER_KINDS, make_occluder
from masquerade.pipeline import SwapOptions

# hand-drawn real occluder photos whose occluder is an object: two microphones at the mouth, a lapel
# microphone beside a hand on the chin, a banana, a medal held to the lips
OBJECT_PHOTOS = (
    "7265/059080.jpg",
    "7407/193927.jpg",
    "7403/014047.jpg",
    "7353/071808.jpg",
    "7293/003391.jpg",
)


def _score(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
    inter = union = truth = 0.0
    for pred, lab, region in pairs:
        p, t = pred & region, lab & region
        inter += float((p & t).sum())
        union += float((p | t).sum())
        truth += float(t.sum())
    return {
        "iou": inter / union if union else 1.0,
        "recall": inter / truth if truth else 1.0,
        "faces": len(pairs),
    }


def synthetic(seg: OcclusionSegmenter, celeba: Path) -> dict[str, Any]:
    bench = load_benchmark("celeba_swap_v1", None, celeba)
    photos = sorted({q for p in bench.pairs for q in (p.source, p.target)})
    per_kind: dict[str, list[Any]] = {k: [] for k in OCCLUDER_KINDS}
    sunglasses: list[str] = []  # photos (as they are) where the sunglasses finder finds sunglasses
    hair: list[str] = []  # … and where the hair finder marks more than a tenth of the face oval
    with FaceAnalyzer(identity=False) as fa:
        for k, path in enumerate(photos):
            rgb = load_image(path).rgb
            faces = fa.get(rgb)
            if not faces:
                continue
            face = faces[0]
            crop, m = face_crop(rgb, face, seg.resolution)
            name = f"{Path(path).parent.name}/{Path(path).name}"
            if sunglasses_mask(crop, face, m, seg.crop_prob(crop, face, m)) is not None:
                sunglasses.append(name)
            found = hair_mask(rgb, face, m, seg.resolution, crop)
            oval = oval_mask(face.mesh, m, seg.resolution) > 0.5
            if found is not None and (found > 0.5)[oval].mean() > 0.1:
                hair.append(name)
            kind = OCCLUDER_KINDS[k % len(OCCLUDER_KINDS)]
            other = load_image(photos[(k + 1) % len(photos)]).rgb
            layer = make_occluder(kind, k, face.landmarks_68, rgb.shape, other, None)
            prob, m = seg.crop_mask(layer.over(rgb), face)
            r = seg.resolution
            lab = cv2.warpAffine(layer.mask.astype(np.float32), m, (r, r), flags=cv2.INTER_LINEAR) > 0.5
            assert face.mesh is not None
            region = oval_mask(face.mesh, m, r, grow=0.03) > 0.5
            per_kind[kind].append((prob > 0.5, lab, region))
    out: dict[str, Any] = {"all": _score([x for v in per_kind.values() for x in v])}
    out.update({k: _score(v) for k, v in per_kind.items()})
    out["sunglasses_found_on"] = sunglasses
    out["hair_over_a_tenth_on"] = hair
    return out


def real(occ: Occlusion, celeba: Path) -> dict[str, Any]:
    """Scores on the hand-drawn real occluders: the ``segmenter`` alone, ``with hands``, ``with hands
    and hair``, and ``with hands, hair and sunglasses`` (``occ``, which must add all three)."""
    doc = json.loads((resources.files("masquerade") / "data/benchmarks/celeba_occlusion_v1.json").read_text())
    hands_only = Occlusion(occ.segmenter, hands=occ.hands or False, hair=False, glasses=False)
    no_glasses = Occlusion(occ.segmenter, hands=occ.hands or False, hair=True, glasses=False)
    scored: list[Any] = []
    with_hands: list[Any] = []
    with_hair: list[Any] = []
    with_all: list[Any] = []
    objects: dict[str, Any] = {}  # the default's scores on each of OBJECT_PHOTOS
    with FaceAnalyzer(identity=False) as fa:
        for entry in doc["faces"]:
            rgb = load_image(celeba / "images" / entry["photo"]).rgb
            face = fa.get(rgb)[0]
            prob, m = occ.segmenter.crop_mask(rgb, face)
            hands, _ = hands_only.crop_mask(rgb, face)
            hair, _ = no_glasses.crop_mask(rgb, face)
            both, _ = occ.crop_mask(rgb, face)
            r = occ.segmenter.resolution
            lab = np.zeros((r, r), np.uint8)
            for poly in entry["polygons"]:
                pts = np.asarray(poly, np.float64) @ m[:, :2].T + m[:, 2]
                cv2.fillPoly(lab, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
            assert face.mesh is not None
            region = oval_mask(face.mesh, m, r, grow=0.03) > 0.5
            scored.append((prob > 0.5, lab > 0, region))
            with_hands.append((hands > 0.5, lab > 0, region))
            with_hair.append((hair > 0.5, lab > 0, region))
            with_all.append((both > 0.5, lab > 0, region))
            if entry["photo"] in OBJECT_PHOTOS:
                objects[entry["photo"]] = _score([with_all[-1]])
    return {
        "segmenter": _score(scored),
        "with hands": _score(with_hands),
        "with hands and hair": _score(with_hair),
        "with hands, hair and sunglasses": _score(with_all),
        "objects, the default": objects,
    }


def sunglasses_grid(celeba: Path, out: Path) -> int:
    """``out``: one row per hand-drawn real occluder photo where the sunglasses finder finds sunglasses —
    the photo, Grace Hopper swapped onto it with occlusion on but the finder off, and with the default
    (finder on); returns the number of rows."""
    seg = OcclusionSegmenter()

    def wearing(rgb: np.ndarray, face: Any) -> bool:
        crop, m = face_crop(rgb, face, seg.resolution)
        return sunglasses_mask(crop, face, m, seg.crop_prob(crop, face, m)) is not None

    return real_grid(celeba, out, wearing, (SwapOptions(occlusion_glasses=False), SwapOptions()))


def objects_grid(celeba: Path, out: Path) -> int:
    """``out``: one row per photo of :data:`OBJECT_PHOTOS` — the photo, Grace Hopper swapped onto it with
    occlusion off, and with the default (on); returns the number of rows."""
    return real_grid(
        celeba, out, lambda rgb, face: True, (SwapOptions(occlusion=False), SwapOptions()), OBJECT_PHOTOS
    )


def real_grid(
    celeba: Path,
    out: Path,
    pick: Callable[[np.ndarray, Any], bool],
    options: tuple[SwapOptions, ...],
    photos: tuple[str, ...] | None = None,
    height: int = 220,
) -> int:
    """``out``: one row per hand-drawn real occluder photo (of ``photos``, or all) whose largest face
    ``pick`` takes — the photo around that face, then Grace Hopper swapped onto it with each of
    ``options``; returns the number of rows."""
    from masquerade import FaceSwapper
    from masquerade.samples import sample_path

    doc = json.loads((resources.files("masquerade") / "data/benchmarks/celeba_occlusion_v1.json").read_text())
    source = load_image(sample_path("grace_hopper")).rgb
    rows = []
    with FaceAnalyzer(identity=False) as fa:
        swappers = [FaceSwapper(o, analyzer=fa) for o in options]
        for entry in doc["faces"]:
            if photos is not None and entry["photo"] not in photos:
                continue
            rgb = load_image(celeba / "images" / entry["photo"]).rgb
            face = fa.get(rgb)[0]
            if not pick(rgb, face):
                continue
            x0, y0, x1, y1 = np.round(face.box).astype(int)
            pad = int(0.5 * max(x1 - x0, y1 - y0))
            box = (slice(max(0, y0 - pad), y1 + pad), slice(max(0, x0 - pad), x1 + pad))
            tiles = [rgb[box]] + [fs.swap(source, rgb)[0][box] for fs in swappers]
            rows.append(
                np.concatenate(
                    [cv2.resize(t, (height, height), interpolation=cv2.INTER_AREA) for t in tiles], 1
                )
            )
        for fs in swappers:
            fs.close()
    if rows:
        grid = np.concatenate(rows, 0)
        cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return len(rows)


def cost(call: Callable[[np.ndarray, Any], Any]) -> float:
    """Median ms of ``call(rgb, face)`` on the 720p photo (100 calls after 5 warm-up calls)."""
    from bench_refiner import photo_720p

    rgb = photo_720p()
    with FaceAnalyzer(identity=False) as fa:
        face = fa.get(rgb)[0]
    for _ in range(5):
        call(rgb, face)
    times = []
    for _ in range(100):
        t0 = time.perf_counter()
        call(rgb, face)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def video_fps(videos: Path, seconds: float) -> dict[str, Any]:
    """mesh3d on the 720p music clip (single face, ``seconds`` of it), occlusion off and on: frames per
    second of ``swap_video`` (wall time of the call, provenance off)."""
    import tempfile

    from masquerade import FaceSwapper
    from masquerade.job import SwapJob
    from masquerade.provenance.stamp import ProvenanceOptions
    from masquerade.samples import sample_path
    from masquerade.video.swap import VideoOptions, swap_video
    from masquerade.video.transcode import EncodeOptions

    clip = videos / "music_720p.mp4"
    source = load_image(sample_path("grace_hopper")).rgb
    out: dict[str, Any] = {}
    with FaceAnalyzer(identity=False) as fa, tempfile.TemporaryDirectory() as tmp:
        face = FaceSwapper(analyzer=fa).source_face(source)
        for on in (False, True):
            job = SwapJob(
                SwapOptions(occlusion=on), ((source, face),), VideoOptions(encode=EncodeOptions(end=seconds)),
                ProvenanceOptions(enabled=False),
            )  # fmt: skip
            t0 = time.perf_counter()
            rep = swap_video(job, clip, Path(tmp) / f"o{int(on)}.mp4", fa)
            out["on" if on else "off"] = rep.frames / (time.perf_counter() - t0)
    return out


EXTRA_LABELS = {"none": " (segmenter only)", "no glasses": " (no sunglasses finder)", "all": ""}


def swaps(
    celeba: Path, names: list[str], kinds: list[str], limit: int | None, out: Path, baselines: list[str],
    command: str, segmenter: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    bench = load_benchmark("celeba_swap_v1", None, celeba)
    bench = limit_pairs(replace(bench, pairs=[p for p in bench.pairs if p.kind in kinds]), limit)
    specs = [
        SwapperSpec(
            n,
            SwapOptions(
                swapper=n,
                occlusion=on,
                occlusion_model=segmenter,
                occlusion_hands=extra != "none",
                occlusion_hair=extra != "none",
                occlusion_glasses=extra == "all",
            ),
            label=f"{n}{'+occlusion' if on else ''}{EXTRA_LABELS[extra] if on else ''}",
        )
        for n in names
        for on, extra in ((False, "all"), (True, "none"), (True, "no glasses"), (True, "all"))
    ] + [SwapperSpec(n) for n in baselines]
    reports = evaluate(specs, bench)
    write_report(reports, out, bench, {"command": command}, force=True)
    # what the hands, the hair and the sunglasses add: occlusion on against the segmenter alone, and
    # what the sunglasses finder adds: on against on without it, pair by pair
    lines = []
    by_label = {r.label: r for r in reports}
    for n in names:
        on = by_label[f"{n}+occlusion"]
        for extra in ("none", "no glasses"):
            lines += [*comparison_lines(compare([by_label[f"{n}+occlusion{EXTRA_LABELS[extra]}"], on])), ""]
    (out / "additions.md").write_text("\n".join(lines))
    keys = {"swap": ("closer_to_source", "top1"), "same": ("ssim_region",), "occ_target": ("occ_survival",),
            "occ_source": ("occ_source_err",)}  # fmt: skip
    res: dict[str, Any] = {}
    for r in reports:
        row = {}
        for kind, ks in keys.items():
            a = r.aggregate.get(kind)
            if a is None:
                continue
            for k in ks:
                v = a[k]
                row[f"{kind}.{k}"] = v["mean"] if isinstance(v, dict) else v
        for tag in ("source_occluded", "target_occluded", "unoccluded"):
            sub = r.aggregate.get("subsets", {}).get(tag, {}).get("swap")
            if sub:
                row[f"swap[{tag}].closer_to_source"] = sub["closer_to_source"]
        unocc = r.aggregate.get("subsets", {}).get("unoccluded", {})
        if unocc.get("swap"):  # where occlusion handling should change nothing (issue 20's bar)
            row["swap[unoccluded].top1"] = unocc["swap"]["top1"]
            row["swap[unoccluded].pose_err"] = unocc["swap"]["pose_err"]["mean"]
        if unocc.get("same"):
            row["same[unoccluded].ssim_region"] = unocc["same"]["ssim_region"]["mean"]
        res[r.label] = row
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/occlusion"))
    ap.add_argument("--swapper", action="append", help="swappers to compare with occlusion off/on (mesh3d)")
    ap.add_argument(
        "--baseline", action="append", default=[], help="swappers run once, occlusion off (none, source)"
    )
    ap.add_argument("--kinds", default="swap,same,occ_target,occ_source")
    ap.add_argument("--limit", type=int, help="pairs per kind")
    ap.add_argument("--skip-swaps", action="store_true")
    ap.add_argument(
        "--segmenter",
        type=Path,
        help="an occlusion segmenter folder (masquerade train segmenter) instead of the package's",
    )
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/videos"))
    ap.add_argument("--seconds", type=float, default=10.0, help="of the 720p clip")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seg = OcclusionSegmenter(args.segmenter)
    occ = Occlusion(seg)
    res: dict[str, Any] = {"environment": environment(), "segmenter": str(seg.path)}
    res["synthetic"] = synthetic(seg, args.celeba)
    res["real"] = real(occ, args.celeba)
    res["sunglasses_grid_rows"] = sunglasses_grid(args.celeba, args.out / "real-sunglasses.jpg")
    res["objects_grid_rows"] = objects_grid(args.celeba, args.out / "real-objects.jpg")
    res["ms_per_face_720p"] = cost(seg.image_mask)
    res["ms_per_face_720p_with_hands_and_hair"] = cost(occ.target_mask)
    occ.close()
    res["video_720p_fps"] = video_fps(args.videos, args.seconds)
    if not args.skip_swaps:
        command = "python benchmarks/bench_occlusion.py " + " ".join(sys.argv[1:] if argv is None else argv)
        res["swaps"] = swaps(
            args.celeba, args.swapper or ["mesh3d"], args.kinds.split(","), args.limit, args.out / "swaps",
            args.baseline, command, None if args.segmenter is None else str(args.segmenter),
        )  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["| occluders | faces | IoU | recall |", "|---|---|---|---|"]
    synth = {k: v for k, v in res["synthetic"].items() if isinstance(v, dict)}
    for name, s in [(f"synthetic: {k}", v) for k, v in synth.items()] + [
        ("real (hand-drawn), segmenter", res["real"]["segmenter"]),
        ("real (hand-drawn), segmenter + hands", res["real"]["with hands"]),
        ("real (hand-drawn), segmenter + hands + hair", res["real"]["with hands and hair"]),
        ("real (hand-drawn), + sunglasses (the default)", res["real"]["with hands, hair and sunglasses"]),
    ]:
        lines.append(f"| {name} | {s['faces']} | {s['iou']:.3f} | {s['recall']:.3f} |")
    found = res["synthetic"]["sunglasses_found_on"]
    lines.append(f"\nsunglasses found on {len(found)} of the benchmark's photos: {', '.join(found)}")
    tenth = res["synthetic"]["hair_over_a_tenth_on"]
    lines.append(f"hair over a tenth of the face oval on {len(tenth)}: {', '.join(tenth)}")
    objects = res["real"]["objects, the default"]
    lines.append(
        "objects (the default): "
        + ", ".join(f"{k} IoU {v['iou']:.2f} recall {v['recall']:.2f}" for k, v in objects.items())
    )
    lines.append(f"segmenter per face, 720p photo: {res['ms_per_face_720p']:.1f} ms (median)")
    extra_ms = res["ms_per_face_720p_with_hands_and_hair"]
    lines.append(f"segmenter + hands + hair + sunglasses per face (target mask): {extra_ms:.1f} ms (median)")
    fps = res["video_720p_fps"]
    lines.append(f"mesh3d on music_720p.mp4: {fps['off']:.1f} fps occlusion off, {fps['on']:.1f} fps on\n")
    if "swaps" in res:
        cols = sorted({k for row in res["swaps"].values() for k in row})
        lines += ["| swapper | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for label, row in res["swaps"].items():
            lines.append(
                f"| {label} | "
                + " | ".join("—" if row.get(c) is None else f"{row[c]:.3f}" for c in cols)
                + " |"
            )
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
