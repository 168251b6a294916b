"""``masquerade serve``: run the local web app and REST API (:mod:`masquerade.server`).

Access (see :mod:`masquerade.server.security`): the token is ``--token``, else ``$MASQUERADE_TOKEN``,
else the one kept in the data folder (made, and printed as a ready address, on the first start);
``--no-token`` only on a loopback address. Stopping: Ctrl-C (SIGINT), SIGTERM and SIGHUP shut the server
down cleanly — running jobs are stopped and marked interrupted, their folders and any upload cut short
emptied — and it exits 130, 143 or 129; a server killed outright (SIGKILL) is cleaned up by the next
start.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
from pathlib import Path
from types import FrameType

from rich.console import Console

from ..errors import InputError
from .common import signing

SHUTDOWN_GRACE = 10  # seconds open requests have to finish once the server is asked to stop


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
    ac = s.add_argument_group(
        "access (every request needs the access token; see the README's security model)"
    )
    ac.add_argument(
        "--token", metavar="TOKEN",
        help="the access token (16 to 256 letters, digits or - . _ ~); default $MASQUERADE_TOKEN, else "
        "the one kept in DATA/access-token, made and printed on the first start",
    )  # fmt: skip
    ac.add_argument(
        "--no-token", action="store_true",
        help="no access token: any program or user of this machine may use the server (only with a "
        "loopback --host)",
    )  # fmt: skip
    ac.add_argument(
        "--allowed-host", action="append", default=[], metavar="NAME",
        help="a host name the Host header may carry besides localhost, IP addresses and --host (the "
        "public name of a reverse proxy in front; repeat)",
    )  # fmt: skip


def make_config(args: argparse.Namespace):  # -> ServerConfig (imports FastAPI)
    from ..server.app import ServerConfig
    from ..server.security import TOKEN_ENV, check_host_name, check_token, is_loopback
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
    token = None
    if args.no_token:
        if args.token is not None:
            raise InputError("--token and --no-token exclude each other")
        if not is_loopback(args.host):
            raise InputError(
                f"--no-token is only allowed with a loopback --host (127.0.0.1, ::1), not {args.host}"
            )
    elif args.token is not None:
        token = check_token(args.token, "--token")
    elif os.environ.get(TOKEN_ENV):
        token = check_token(os.environ[TOKEN_ENV], TOKEN_ENV)
    allowed = tuple(dict.fromkeys(check_host_name(h) for h in args.allowed_host))
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
        token=token,
        no_token=args.no_token,
        host=args.host,
        allowed_hosts=allowed,
    )


def _address(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # all addresses: this machine's own is one of them
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def cmd_serve(args: argparse.Namespace, out: Console, err: Console) -> int:
    import uvicorn

    from ..server.app import create_app
    from ..server.security import TOKEN_ENV, TOKEN_FILE, is_loopback, load_or_create_token

    cfg = make_config(args)
    if not args.no_token and cfg.token is None:
        token, created = load_or_create_token(cfg.data)
        cfg = dataclasses.replace(cfg, token=token)
    else:
        created = False
    if not is_loopback(args.host):
        err.print(
            f"warning: listening on {args.host}: other machines can reach it; requests need the access "
            "token, but they travel as plain HTTP: put it behind a reverse proxy with TLS (see the README)",
            highlight=False,
            markup=False,
        )
    app = create_app(cfg)
    url = _address(args.host, args.port)
    if cfg.no_token:
        access = "no access token (--no-token)"
    elif created:
        url += f"?token={cfg.token}"
        access = f"a new access token, kept in {cfg.data / TOKEN_FILE}; open this address once per browser"
    elif args.token is not None:
        access = "access token from --token"
    elif os.environ.get(TOKEN_ENV):
        access = f"access token from {TOKEN_ENV}"
    else:
        access = f"access token in {cfg.data / TOKEN_FILE}: open the address with ?token=TOKEN once"
    out.print(
        f"masquerade web app on {url} ({access}; data in {cfg.data}); Ctrl-C stops it",
        highlight=False,
        markup=False,
    )
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", server_header=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )  # fmt: skip
    server = uvicorn.Server(config)
    stopped: list[int] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        # SIGTERM is uvicorn's while it serves (and raised again here after its shutdown); SIGHUP is not,
        # so without this a hang-up would end the server without its shutdown
        if signum not in stopped:
            stopped.append(signum)
        server.handle_exit(signum, frame)

    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    previous = {n: signal.signal(getattr(signal, n), stop) for n in names}
    try:
        server.run()
    finally:
        for n, handler in previous.items():
            signal.signal(getattr(signal, n), handler)
        app.state.scheduler.close()  # done by the shutdown, unless it was cut short (a second Ctrl-C)
    if stopped:
        err.print(f"stopped by {signal.Signals(stopped[0]).name}", highlight=False)
        return 128 + stopped[0]
    return 0
