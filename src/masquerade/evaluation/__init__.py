"""Evaluation: ``masquerade evaluate`` — benchmarks of (source, target) pairs, metrics and reports.

Runs swappers over a benchmark of (source, target) pairs and measures the results; every function is
usable from Python too::

    from masquerade.evaluation import evaluate, load_benchmark, write_report
    bench = load_benchmark("lfw_swap_v1", "../shared/data/lfw")
    reports = evaluate(["mesh3d", "none"], bench)
    write_report(reports, "report/", benchmark=bench)

**Benchmark files** are tab-separated text, ``#`` comment lines and an optional header row, one pair
per row: ``kind  source  target  [source_other  [source_id  [target_id]]]``. ``kind`` is ``swap`` (a
different person's face is put onto the target) or ``self`` (source and target show the same person;
with source = target = one photo, the output can be compared with the target pixel by pixel).
``source_other`` is another photo of the source person (``-`` for none): the output shares pixels with
the source photo, so distance to another photo of that person is the fairer identity test. Ids name
people; without them each distinct source path is its own identity. A row ``gallery  photo  -  -  id``
adds a photo of a further identity (or of a source's) to the retrieval galleries without swapping it:
distractors, so that retrieval means something when few people are swapped (e.g. a trained
autoencoder, which has one identity). Relative paths resolve against a
root folder (``--root``; by default the pairs file's own folder). The shipped benchmark
``lfw_swap_v1`` (``data/benchmarks/lfw_swap_v1.tsv``, built by ``scripts/make_lfw_benchmark.py
--seed 0``) has 100 swap pairs of 200 distinct LFW people, each source person with a second photo,
and 50 self pairs of 50 further people; its paths are relative to LFW's ``images/`` folder.

**Swappers** are named through the registry (:data:`masquerade.swappers.SWAPPERS`, run through
:class:`~masquerade.pipeline.FaceSwapper` with a :class:`~masquerade.pipeline.SwapOptions`) or are one
of the reference baselines: ``none`` (output = target unchanged: what no swap scores) and ``source``
(output = the source photo itself: the identity ceiling, with the source's pose and expression).

**Metrics**, measured with one :class:`~masquerade.analysis.analyzer.FaceAnalyzer` (mediapipe mesh + dlib
128-d identity) on the largest face of source and target and, in the output, the face overlapping the
target face (IoU ≥ 0.3):

* identity: cosine similarity and euclidean distance of the output embedding to the source, to the
  target and to the source's other photo; *closer to source* when d(out, src) < d(out, tgt);
* retrieval: the output's rank among all distinct source identities of the benchmark's swap pairs
  (plus the identities of its ``gallery`` rows)
  (an identity's distance is the minimum over its photos; ties rank in the output's favour only when
  exactly equal), top-1 and top-5; once with the source photos as gallery and once with the other
  photos of the source people;
* pose error: ``|Δyaw|, |Δpitch|, |Δroll|`` output vs target (degrees, wrapped), and their mean;
* expression error: mediapipe meshes of output and target are brought into the canonical frame
  (:meth:`CanonicalMesh.normalised`: pose, scale and position removed; divided by the inter-ocular
  distance), the 68-point brows, eyes and mouth are taken in x/y, each of the five regions is centred
  on its own centroid (which removes where a feature sits — identity proportions — and keeps its
  shape: opening, curvature), and the mean point distance is reported in inter-ocular distances;
  ``expr_measures_err`` is the mean absolute difference of :meth:`CanonicalMesh.expression`'s eight
  measures;
* self pairs: SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, on BT.601
  luma, mean over the map without the 5-pixel border, no downsampling) and PSNR (all channels, 8-bit
  peak; identical images give infinity, stored as :data:`~masquerade.evaluation.metrics.PSNR_CAP`
  dB) of output vs target, over the whole image and within the target face box enlarged by 10 %;
* Fréchet distance on identity features: ``|μ₁ − μ₂|² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½)`` between the dlib
  embeddings of the swap pairs' outputs and those of the distinct source photos. This is a Fréchet
  distance on dlib identity features, **not** FID; with ~100 samples in 128 dimensions it is biased
  upwards and only comparable between runs with the same n;
* optional, only with a user-supplied ONNX file (:class:`OnnxImageModel`): a Fréchet distance over that
  model's features (outputs of swap pairs vs the distinct targets) and an LPIPS-style distance (self
  pairs, output vs target). Both are labelled with the model's file name and sha256; they are a
  standard FID / LPIPS only if the file is the standard network;
* video (:func:`evaluate_video`): landmark jitter and colour flicker of the swapped clip against the
  input clip (:mod:`masquerade.video.temporal`).

**Failures**: a pair whose swap raises :class:`MasqueradeError` (or ``ValueError``), or whose output
(or target) has no face where the target face was, is a failure: it counts as *not closer* and as a
retrieval miss in the rates (whose denominator is every pair of that kind), has no value in the
continuous metrics (whose ``n`` is reported), and is listed with its reason. Unreadable input files
raise :class:`InputError` before any swap is run.

The package's modules: :mod:`~masquerade.evaluation.metrics` (the metric maths),
:mod:`~masquerade.evaluation.onnx_models` (user-supplied ONNX models),
:mod:`~masquerade.evaluation.benchmarks` (pairs files, shipped benchmarks),
:mod:`~masquerade.evaluation.results` (what is evaluated and what is measured),
:mod:`~masquerade.evaluation.run` (:func:`evaluate`, :func:`evaluate_video`, the aggregates) and
:mod:`~masquerade.evaluation.report` (``report.md``, ``results.json``, the plots).
"""

from __future__ import annotations

from ..files import prepare_out_folder
from .benchmarks import Benchmark, PairSpec, limit_pairs, load_benchmark, load_pairs, shipped_benchmarks
from .metrics import expression_error, frechet_distance, pose_error, psnr, retrieval_rank, ssim
from .onnx_models import OnnxImageModel, OnnxModelSpec
from .report import markdown_report, write_plots, write_report
from .results import (
    BASELINES,
    PairMetrics,
    SwapperReport,
    SwapperSpec,
    VideoMetrics,
    VideoPairSpec,
    swapper_spec,
)
from .run import aggregate, evaluate, evaluate_video

__all__ = [
    "BASELINES",
    "Benchmark",
    "OnnxImageModel",
    "OnnxModelSpec",
    "PairMetrics",
    "PairSpec",
    "SwapperReport",
    "SwapperSpec",
    "VideoMetrics",
    "VideoPairSpec",
    "aggregate",
    "evaluate",
    "evaluate_video",
    "expression_error",
    "frechet_distance",
    "limit_pairs",
    "load_benchmark",
    "load_pairs",
    "markdown_report",
    "pose_error",
    "prepare_out_folder",
    "psnr",
    "retrieval_rank",
    "shipped_benchmarks",
    "ssim",
    "swapper_spec",
    "write_plots",
    "write_report",
]
