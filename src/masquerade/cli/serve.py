"""``masquerade serve``: run the local web app and REST API (:mod:`masquerade.server`)."""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

from rich.console import Console

from ..errors import InputError
from .common import signing

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _model_arg(text: str) -> tuple[str, Path]:
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise argparse.ArgumentTypeError("expected NAME=DIR (a trained model folder)")
    return name.strip(), Path(folder.strip())


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "serve",
        help="run the local web app and REST API (browser UI at http://127.0.0.1:7860/)",
        description="Start a local web app: upload a source photo and a target photo or video, pick faces, "
        "choose options, follow progress, preview and download; a REST API (/openapi.json) does the "
        "same for programs. Jobs and results persist in --data across restarts.",
    )
    s.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    s.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    s.add_argument(
        "--data", type=Path, default=Path("masquerade-server"),
        help="folder for uploads, results and the job database (default ./masquerade-server)",
    )  # fmt: skip
    s.add_argument("--jobs", type=int, default=1, help="jobs running at once (default 1)")
    s.add_argument("--queue", type=int, default=16, help="jobs that may wait; more are refused with 429 (16)")
    s.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload in MB (200)")
    s.add_argument("--max-pixels", type=int, default=50_000_000, help="largest image or frame (50,000,000)")
    s.add_argument("--max-video-seconds", type=float, default=300.0, help="longest target video (300)")
    s.add_argument("--job-time-limit", type=float, default=900.0, help="seconds a job may run (900)")
    s.add_argument(
        "--worker-memory-mb", type=float, default=2048.0, metavar="MB",
        help="a worker process (one per --jobs, models kept loaded) using more memory after a job is "
        "replaced by a fresh one (2048; 0: no limit)",
    )  # fmt: skip
    pv = s.add_argument_group("provenance (every output carries a watermark and a signed C2PA manifest)")
    pv.add_argument(
        "--allow-no-provenance", action="store_true",
        help="let a job ask for outputs without watermark and manifest ('provenance': false), as "
        "`masquerade swap --no-provenance` does; off by default",
    )  # fmt: skip
    pv.add_argument("--c2pa-cert", type=Path, metavar="PEM", help="certificate chain to sign manifests with")
    pv.add_argument("--c2pa-key", type=Path, metavar="PEM", help="private key of --c2pa-cert")
    s.add_argument(
        "--model", type=_model_arg, action="append", metavar="NAME=DIR",
        help="offer a trained model folder (autoencoder, generator or diffusion) as swapper NAME (repeat)",
    )  # fmt: skip


def make_config(args: argparse.Namespace):  # -> ServerConfig (imports FastAPI)
    from ..server.app import ServerConfig
    from ..swappers.aligned import folder_kind

    for name, value in (("--jobs", args.jobs), ("--queue", args.queue)):
        if value < 1:
            raise InputError(f"{name} must be at least 1")
    for name, value in (
        ("--max-upload-mb", args.max_upload_mb),
        ("--max-pixels", args.max_pixels),
        ("--max-video-seconds", args.max_video_seconds),
        ("--job-time-limit", args.job_time_limit),
    ):
        if not value > 0:
            raise InputError(f"{name} must be positive")
    if not args.worker_memory_mb >= 0:
        raise InputError("--worker-memory-mb must be 0 (no limit) or more")
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: not a port number")
    models: dict[str, str] = {}
    for name, folder in args.model or []:
        if name == "mesh3d" or name in models:
            raise InputError(f"--model {name}=…: the name is taken")
        if folder_kind(folder) is None:
            raise InputError(f"--model {name}={folder}: not a trained model folder (no readable model.json)")
        models[name] = str(folder.resolve())
    signing(args)
    if args.data.exists() and not args.data.is_dir():
        raise InputError(f"--data {args.data}: not a folder")
    return ServerConfig(
        data=args.data.resolve(),
        max_upload_mb=args.max_upload_mb,
        max_pixels=args.max_pixels,
        max_video_seconds=args.max_video_seconds,
        concurrency=args.jobs,
        queue_size=args.queue,
        job_time_limit=args.job_time_limit,
        worker_memory_mb=args.worker_memory_mb,
        models=models,
        allow_no_provenance=args.allow_no_provenance,
        c2pa_cert=None if args.c2pa_cert is None else args.c2pa_cert.resolve(),
        c2pa_key=None if args.c2pa_key is None else args.c2pa_key.resolve(),
    )


def _is_local(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace, out: Console, err: Console) -> int:
    import uvicorn

    from ..server.app import create_app

    cfg = make_config(args)
    if not _is_local(args.host):
        err.print(
            f"warning: listening on {args.host}: anyone who can reach this machine can upload files and run "
            "jobs (there is no login); use 127.0.0.1 unless you mean it",
            highlight=False,
            markup=False,
        )
    app = create_app(cfg)
    out.print(
        f"masquerade web app on http://{args.host}:{args.port}/ (data in {cfg.data}); Ctrl-C stops it",
        highlight=False,
        markup=False,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
