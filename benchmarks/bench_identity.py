"""Benchmark masquerade's own dlib-ResNet reader + ONNX face encoder against dlib itself.

Usage (from the repository root)::

    python benchmarks/bench_identity.py --lfw ../shared/data/lfw --out benchmarks/out/identity

Faces: every LFW photo named in ``pairs.txt`` is analysed with ``FaceAnalyzer(identity=False)``
(``small_faces=False``); the face used is the largest one whose box contains the image centre (LFW
centres the named person), or the largest face when none does. Its 150×150 chip comes from dlib's
5-point predictor and ``get_face_chip`` (:meth:`IdentityEncoder.chip`), as in dlib's LFW protocol. A
photo with no face is reported and every pair that uses it counts as a wrong answer.

* **parse**: reading dlib's ``.dat`` (cold parse, sha256, the ``.npz`` cache), building the ONNX graph,
  opening it from the cache; plus the vectorised decoder for dlib's older float encoding (version-1
  tensors) on all 5.6 M weights re-encoded that way, against a Python loop;
* **equivalence**: ours (ONNX) vs ``dlib.face_recognition_model_v1.compute_face_descriptor`` on the same
  chips of the first ``--equiv`` photos (file order): cosine similarity and largest absolute difference;
* **verification**: LFW's official 10-fold protocol on ``pairs.txt`` (10 folds of 300 matched + 300
  mismatched pairs): the euclidean-distance threshold is chosen on 9 folds (best accuracy; pairs with a
  missing face are wrong at any threshold) and accuracy measured on the held-out fold; mean ± standard
  deviation (and standard error) over folds. Also the accuracy at dlib's fixed threshold 0.6.
  ``--folds K`` uses only the first K folds (for quick runs); ``--dlib-accuracy`` also runs dlib's own
  network on every chip for a side-by-side accuracy (slow: ~85 ms per face here);
* **speed**: the same ``--speed-chips`` chips through both, interleaved in ``--rounds`` rounds so that
  both see the same machine load: one face per call, all chips in one call, and the full ``embed``
  (5-point alignment + chip + network) from 68 landmarks. Model loading is excluded.

Writes ``results.json`` and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from envinfo import environment

from masquerade import Face, FaceAnalyzer, load_image
from masquerade.identity import dlibnet
from masquerade.identity.encoder import IdentityEncoder, cosine_similarity
from masquerade.identity.onnx_net import OnnxFaceEncoder, build_model
from masquerade.models import file_sha256, get_model

SPEED_TARGET = 5.0


# ------------------------------------------------------------------------------------------ pairs


@dataclass(frozen=True)
class Pair:
    fold: int
    same: bool
    a: tuple[str, int]
    b: tuple[str, int]


def read_pairs(lfw: Path) -> tuple[list[Pair], int]:
    lines = (lfw / "pairs.txt").read_text().splitlines()
    folds, per = (int(v) for v in lines[0].split())
    pairs: list[Pair] = []
    row = 1
    for k in range(folds):
        for same in (True, False):
            for line in lines[row : row + per]:
                f = line.split()
                if same:
                    pairs.append(Pair(k, True, (f[0], int(f[1])), (f[0], int(f[2]))))
                else:
                    pairs.append(Pair(k, False, (f[0], int(f[1])), (f[2], int(f[3]))))
            row += per
    return pairs, folds


def image_path(lfw: Path, key: tuple[str, int]) -> Path:
    return lfw / "images" / key[0] / f"{key[0]}_{key[1]:04d}.jpg"


def central_face(fa: FaceAnalyzer, rgb: np.ndarray) -> Face | None:
    faces = fa.get(rgb, identity=False, small_faces=False)
    if not faces:
        return None
    cx, cy = rgb.shape[1] / 2, rgb.shape[0] / 2
    inside = [f for f in faces if f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3]]
    return max(inside or faces, key=lambda f: f.area)


# ------------------------------------------------------------------------------------------ parse


def timed(fn, repeat: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return 1000.0 * best, out


def run_parse(cache: Path) -> dict[str, Any]:
    import os
    import shutil

    shutil.rmtree(cache, ignore_errors=True)
    os.environ["MASQUERADE_CACHE"] = str(cache)  # a private, empty cache: "cold" really is cold
    dat = get_model("dlib-resnet-128").path()
    data = dat.read_bytes()
    r: dict[str, Any] = {"file": str(dat), "file_mb": round(len(data) / 2**20, 2)}
    # parse + write .npz + build graph + write .onnx + open the session
    r["encoder_cold_ms"], _ = timed(lambda: OnnxFaceEncoder(), repeat=1)
    r["encoder_cached_ms"], _ = timed(lambda: OnnxFaceEncoder())  # sha256 + session from the .onnx
    r["sha256_ms"], _ = timed(lambda: file_sha256(dat))
    r["parse_cold_ms"], net = timed(lambda: dlibnet.parse_bytes(data))
    r["load_cached_ms"], _ = timed(lambda: dlibnet.load(dat, use_cache=True))  # sha256 + .npz
    r["build_onnx_ms"], _ = timed(lambda: build_model(net).SerializeToString())
    r["parameters"] = net.num_params()
    r["ops"] = len(net.ops)
    # dlib's older version-1 tensors store every weight as a (mantissa, exponent) integer pair
    weights = np.concatenate([a.ravel() for op in net.ops for k, a in op.arrays.items() if k != "avg_rgb"])
    enc = np.frombuffer(dlibnet.encode_floats(weights), np.uint8)
    r["v1_floats"] = len(weights)
    r["v1_bytes_mb"] = round(len(enc) / 2**20, 2)
    r["v1_decode_vectorised_ms"], (vals, _end) = timed(lambda: dlibnet.decode_floats(enc, 0, len(weights)))
    assert np.array_equal(vals.astype(np.float32), weights)
    k = 200_000
    rd = dlibnet._Reader(enc.tobytes()[: 12 * k])
    t = time.perf_counter()
    for _ in range(k):
        rd.float()
    r["v1_decode_python_loop_ms_extrapolated"] = 1000.0 * (time.perf_counter() - t) * len(weights) / k
    return {key: round(v, 2) if isinstance(v, float) else v for key, v in r.items()}


# -------------------------------------------------------------------------------------- analysis


@dataclass
class Analysis:
    chips: dict[tuple[str, int], np.ndarray | None]  # None: no face found
    descriptors: dict[tuple[str, int], np.ndarray | None]
    missing: list[str]
    kept: list[tuple[np.ndarray, np.ndarray]]  # (rgb, lm68) of the first faces, for the speed test
    seconds: float


def analyse_images(
    lfw: Path, keys: list[tuple[str, int]], fa: FaceAnalyzer, ours: IdentityEncoder, keep: int
) -> Analysis:
    """Chips and our descriptors (one batched call) for every photo."""
    chips: dict[tuple[str, int], np.ndarray | None] = {}
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    t0 = time.perf_counter()
    for i, key in enumerate(keys):
        if i and i % 500 == 0:
            print(f"  {i}/{len(keys)} photos, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        rgb = load_image(image_path(lfw, key)).rgb
        face = central_face(fa, rgb)
        chips[key] = None if face is None else ours.chip(rgb, face.landmarks_68)
        if face is not None and len(kept) < keep:
            kept.append((rgb, face.landmarks_68))
    found = [k for k in keys if chips[k] is not None]
    emb = ours.embed_chips([chips[k] for k in found])
    descriptors = {k: None for k in keys} | dict(zip(found, emb, strict=True))
    missing = [f"{k[0]}_{k[1]:04d}" for k in keys if chips[k] is None]
    return Analysis(chips, descriptors, missing, kept, time.perf_counter() - t0)


def run_equivalence(keys, chips, descriptors, dlib_net, n: int) -> dict[str, Any]:
    sel = [k for k in keys if chips[k] is not None][:n]
    cos, maxabs, dist = [], [], []
    for k in sel:
        ref = np.asarray(dlib_net.compute_face_descriptor(chips[k]), np.float32)
        ours = descriptors[k]
        cos.append(cosine_similarity(ours, ref))
        maxabs.append(float(np.abs(ours - ref).max()))
        dist.append(float(np.linalg.norm(ours - ref)))
    return {
        "faces": len(sel),
        "cosine_min": min(cos),
        "cosine_median": statistics.median(cos),
        "max_abs_diff_max": max(maxabs),
        "max_abs_diff_median": statistics.median(maxabs),
        "euclidean_max": max(dist),
        "n_cosine_below_0.9999": sum(c < 0.9999 for c in cos),
    }


# ---------------------------------------------------------------------------------- verification


def best_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """Threshold (same person iff distance < t) with the best accuracy; ties → the middle one."""
    order = np.argsort(d)
    ds, ss = d[order], same[order]
    # accepting the first i pairs: correct = same among them + different among the rest
    correct = (
        np.concatenate([[0], np.cumsum(ss)]) + (len(ss) - ss.sum()) - np.concatenate([[0], np.cumsum(~ss)])
    )
    cuts = np.concatenate([[ds[0] - 1e-3], (ds[:-1] + ds[1:]) / 2, [ds[-1] + 1e-3]])
    best = np.flatnonzero(correct == correct.max())
    return float(cuts[best[len(best) // 2]])


def run_verification(pairs: list[Pair], descriptors: dict, folds: list[int]) -> dict[str, Any]:
    d = np.array(
        [
            np.linalg.norm(descriptors[p.a] - descriptors[p.b])
            if descriptors[p.a] is not None and descriptors[p.b] is not None
            else np.nan
            for p in pairs
        ]
    )
    same = np.array([p.same for p in pairs])
    fold = np.array([p.fold for p in pairs])
    valid = ~np.isnan(d)
    accs, ths, at06 = [], [], []
    for k in folds:
        train = np.isin(fold, [f for f in folds if f != k] or [k]) & valid
        t = best_threshold(d[train], same[train])
        test = fold == k
        ok = valid[test] & ((d[test] < t) == same[test])  # a missing face is a wrong answer
        accs.append(float(ok.mean()))
        ths.append(t)
        at06.append(float((valid[test] & ((d[test] < 0.6) == same[test])).mean()))
    sel = np.isin(fold, folds)
    return {
        "folds": len(folds),
        "pairs": int(sel.sum()),
        "pairs_with_missing_face": int((~valid & sel).sum()),
        "fold_accuracy": accs,
        "fold_threshold": ths,
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
        "accuracy_se": float(np.std(accs, ddof=1) / np.sqrt(len(accs))) if len(accs) > 1 else 0.0,
        "threshold_mean": float(np.mean(ths)),
        "accuracy_at_0.6_mean": float(np.mean(at06)),
        "distance_same_median": float(np.nanmedian(d[sel & same])),
        "distance_diff_median": float(np.nanmedian(d[sel & ~same])),
    }


# ------------------------------------------------------------------------------------------ speed


def run_speed(
    chips: np.ndarray, lms: list, ours: IdentityEncoder, theirs: IdentityEncoder, rounds: int
) -> dict[str, Any]:
    dlib_net = theirs._net
    onnx = ours._onnx
    listed = [np.ascontiguousarray(c) for c in chips]
    n = len(listed)
    # warm up both
    dlib_net.compute_face_descriptor(listed[0])
    onnx.embed_chips(chips)
    onnx.embed_chip(chips[0])
    times: dict[str, list[float]] = {
        k: []
        for k in (
            "dlib_single",
            "ours_single",
            "dlib_batch",
            "ours_batch",
            "dlib_embed_landmarks",
            "ours_embed_landmarks",
        )
    }

    def per_face(fn, count: int) -> float:
        t = time.perf_counter()
        fn()
        return 1000.0 * (time.perf_counter() - t) / count

    for r in range(rounds):
        print(f"  speed round {r + 1}/{rounds}", file=sys.stderr)
        times["dlib_single"].append(
            per_face(lambda: [dlib_net.compute_face_descriptor(c) for c in listed], n)
        )
        times["ours_single"].append(per_face(lambda: [onnx.embed_chip(c) for c in listed], n))
        times["dlib_batch"].append(per_face(lambda: dlib_net.compute_face_descriptor(listed), n))
        times["ours_batch"].append(per_face(lambda: onnx.embed_chips(chips), n))
        times["dlib_embed_landmarks"].append(per_face(lambda: [theirs.embed(*x) for x in lms], len(lms)))
        times["ours_embed_landmarks"].append(per_face(lambda: [ours.embed(*x) for x in lms], len(lms)))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "chips": n,
        "landmark_faces": len(lms),
        "rounds": rounds,
        "onnx_threads": onnx.threads,
        "median_ms_per_face": med,
        "speedup_single": med["dlib_single"] / med["ours_single"],
        "speedup_batch": med["dlib_batch"] / med["ours_batch"],
        "speedup_embed_landmarks": med["dlib_embed_landmarks"] / med["ours_embed_landmarks"],
        "times_ms_per_face": {k: [round(x, 3) for x in v] for k, v in times.items()},
    }


# ---------------------------------------------------------------------------------------- output


def markdown(res: dict[str, Any]) -> str:
    out: list[str] = []
    if p := res.get("parse"):
        out += [
            "| Loading dlib's ResNet (.dat, {} MB, {:,} parameters) | ms |".format(
                p["file_mb"], p["parameters"]
            ),
            "|---|---|",
            f"| Parse the .dat (cold, in memory) | {p['parse_cold_ms']:.1f} |",
            f"| sha256 of the .dat (cache key) | {p['sha256_ms']:.1f} |",
            f"| Parsed weights from the .npz cache (incl. sha256) | {p['load_cached_ms']:.1f} |",
            f"| Build the ONNX graph | {p['build_onnx_ms']:.1f} |",
            f"| Encoder ready, nothing cached (parse + build + write + session) "
            f"| {p['encoder_cold_ms']:.1f} |",
            f"| Encoder ready from the cached .onnx | {p['encoder_cached_ms']:.1f} |",
            f"| Version-1 (dlib-float) tensors, {p['v1_floats']:,} floats / {p['v1_bytes_mb']} MB: "
            f"vectorised decode | {p['v1_decode_vectorised_ms']:.0f} |",
            f"| … same, Python loop (extrapolated from 200k floats) "
            f"| {p['v1_decode_python_loop_ms_extrapolated']:.0f} |",
            "",
        ]
    if e := res.get("equivalence"):
        out += [
            f"| Ours (ONNX) vs dlib, same chips ({e['faces']} LFW faces) | Value |",
            "|---|---|",
            f"| Cosine similarity, min / median | {e['cosine_min']:.12f} / {e['cosine_median']:.12f} |",
            f"| 1 − cosine, largest | {1 - e['cosine_min']:.1e} |",
            f"| Largest absolute difference (max over faces) | {e['max_abs_diff_max']:.2e} |",
            f"| Euclidean distance ours ↔ dlib, max | {e['euclidean_max']:.2e} |",
            f"| Faces below cosine 0.9999 | {e['n_cosine_below_0.9999']} |",
            "",
        ]
    for key, label in (("verification", "ours (ONNX)"), ("verification_dlib", "dlib")):
        if v := res.get(key):
            out += [
                f"| LFW verification, {label}: {v['folds']}-fold, {v['pairs']} pairs | Value |",
                "|---|---|",
                f"| Accuracy, mean ± std over folds (± s.e.) "
                f"| {100 * v['accuracy_mean']:.2f} % ± {100 * v['accuracy_std']:.2f} "
                f"(± {100 * v['accuracy_se']:.2f}) |",
                f"| Threshold chosen on the other folds, mean | {v['threshold_mean']:.3f} |",
                f"| Accuracy at dlib's fixed threshold 0.6 | {100 * v['accuracy_at_0.6_mean']:.2f} % |",
                f"| Pairs with a photo where no face was found (counted wrong) "
                f"| {v['pairs_with_missing_face']} |",
                f"| Median distance, same / different person "
                f"| {v['distance_same_median']:.3f} / {v['distance_diff_median']:.3f} |",
                "",
            ]
    if s := res.get("speed"):
        m = s["median_ms_per_face"]
        out += [
            f"| Speed per face ({s['chips']} LFW chips, median of {s['rounds']} interleaved rounds) "
            f"| dlib | ours (ONNX, {s['onnx_threads']} threads) | Speed-up |",
            "|---|---|---|---|",
            f"| One chip per call | {m['dlib_single']:.2f} ms | {m['ours_single']:.2f} ms "
            f"| {s['speedup_single']:.1f}× |",
            f"| All {s['chips']} chips in one call | {m['dlib_batch']:.2f} ms | {m['ours_batch']:.2f} ms "
            f"| {s['speedup_batch']:.1f}× |",
            f"| `IdentityEncoder.embed` from 68 landmarks (5-point fit + chip + network, "
            f"{s['landmark_faces']} faces) | {m['dlib_embed_landmarks']:.2f} ms "
            f"| {m['ours_embed_landmarks']:.2f} ms | {s['speedup_embed_landmarks']:.1f}× |",
            "",
        ]
    if a := res.get("analysis"):
        miss = ", ".join(a["no_face"]) or "none"
        out.append(f"Photos analysed: {a['photos']} in {a['seconds']:.0f} s; no face found in: {miss}.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"), help="LFW root")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/identity"), help="output folder")
    ap.add_argument("--folds", type=int, default=10, help="use only the first K folds of pairs.txt")
    ap.add_argument("--equiv", type=int, default=300, help="faces compared with dlib for equivalence")
    ap.add_argument("--speed-chips", type=int, default=32, help="chips in the speed test")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved speed rounds")
    ap.add_argument("--dlib-accuracy", action="store_true", help="also run dlib's network on every chip")
    ap.add_argument("--skip-parse", action="store_true")
    args = ap.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "environment": environment("dlib", "onnxruntime", "onnx"),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    if not args.skip_parse:
        print("parse timings", file=sys.stderr)
        res["parse"] = run_parse(args.out / "cache")

    pairs, nfolds = read_pairs(args.lfw)
    folds = list(range(min(args.folds, nfolds)))
    pairs = [p for p in pairs if p.fold in folds]
    keys = list(dict.fromkeys(k for p in pairs for k in (p.a, p.b)))
    print(f"{len(pairs)} pairs in {len(folds)} folds, {len(keys)} photos", file=sys.stderr)
    with (
        FaceAnalyzer(identity=False) as fa,
        IdentityEncoder(backend="onnx") as ours,
        IdentityEncoder(backend="dlib") as theirs,
    ):
        fa.prepare()
        an = analyse_images(args.lfw, keys, fa, ours, keep=args.speed_chips)
        res["analysis"] = {"photos": len(keys), "no_face": an.missing, "seconds": round(an.seconds, 1)}
        print("equivalence", file=sys.stderr)
        res["equivalence"] = run_equivalence(keys, an.chips, an.descriptors, theirs._net, args.equiv)
        res["verification"] = run_verification(pairs, an.descriptors, folds)
        found = [k for k in keys if an.chips[k] is not None]
        if args.dlib_accuracy:
            print("dlib on every chip", file=sys.stderr)
            ref = theirs.embed_chips([an.chips[k] for k in found])
            ddesc = {k: None for k in keys} | dict(zip(found, ref, strict=True))
            res["verification_dlib"] = run_verification(pairs, ddesc, folds)
        print("speed", file=sys.stderr)
        chips = np.stack([an.chips[k] for k in found[: args.speed_chips]])
        res["speed"] = run_speed(chips, an.kept, ours, theirs, args.rounds)
    res["total_seconds"] = round(time.perf_counter() - t_start, 1)
    md = markdown(res)
    (args.out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (args.out / "results.md").write_text(md)
    print(md)
    print(f"total {res['total_seconds']} s; wrote {args.out}/results.json, results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
