"""``vidsift serve``: an HTTP API (OpenAI-compatible chat completions with video parts) and a
live web page for one loaded model. Needs the ``serve`` extra (starlette, uvicorn)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from ..threads import CLI_HELP as THREADS_HELP, apply as apply_threads


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        model: str = typer.Option(..., "--model", "-m", help="Checkpoint folder, Hub id, or random:<arch> (random weights, offline)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default; anything else is reachable from the network)."),
        port: int = typer.Option(8000, "--port", help="TCP port."),
        budget: Optional[str] = typer.Option(None, "--budget", "-b", help="Default visual-token budget of answers: N tokens, a fraction, P%, or a preset (fast, balanced, faithful, mustdrop)."),
        api_key: Optional[str] = typer.Option(None, "--api-key", envvar="VIDSIFT_API_KEY", help="Bearer token required on /v1 and /metrics (default: $VIDSIFT_API_KEY; none: no token)."),
        allowed_root: List[Path] = typer.Option([], "--allowed-root", metavar="DIR", help="A folder whose files requests may name by path (repeatable; none: uploads only)."),
        allowed_host: List[str] = typer.Option([], "--allowed-host", metavar="NAME", help="A host name requests may carry in Host and pages in Origin besides localhost, 127.0.0.1, ::1 and --host (repeatable; a reverse proxy's public name). Others get 403: DNS rebinding and cross-site posts."),
        allow_remote_urls: bool = typer.Option(False, "--allow-remote-urls", help="Fetch http(s) video URLs for clients (off: refused; on: the server requests any address a client names)."),
        max_upload_mb: float = typer.Option(256.0, "--max-upload-mb", help="Largest video upload (MB)."),
        max_duration: float = typer.Option(10800.0, "--max-duration", help="Longest video accepted (seconds)."),
        max_pixels: int = typer.Option(3840 * 2160, "--max-pixels", help="Largest frame accepted (width x height)."),
        max_queue: int = typer.Option(64, "--max-queue", help="Requests that may wait for the model; more get 503."),
        max_uploads: int = typer.Option(8, "--max-uploads", help="Uploads (POSTs that may carry a video) received or answered at once; more get 503 before their body is read."),
        header_timeout: float = typer.Option(10.0, "--header-timeout", help="Seconds a request's line and headers may take to arrive; then 408 and the connection closes."),
        body_timeout: float = typer.Option(300.0, "--body-timeout", help="Seconds a request's whole body may take to arrive; then 408 (raise it for large uploads over slow links)."),
        max_new_tokens: int = typer.Option(64, "--max-new-tokens", help="Default tokens to generate per answer."),
        live_budget: str = typer.Option("1024", "--live-budget", help="The live page's rolling memory: visual tokens (1024), or a share (25%) or preset of the tokens of the stream's last 10 minutes; a page may ask for less."),
        live_fps: float = typer.Option(1.0, "--live-fps", help="Frames per second the live page's session samples."),
        max_sessions: int = typer.Option(4, "--max-sessions", help="Live pages served at once."),
        ssl_certfile: Optional[Path] = typer.Option(None, "--ssl-certfile", help="TLS certificate (browsers allow the camera only on https or localhost)."),
        ssl_keyfile: Optional[Path] = typer.Option(None, "--ssl-keyfile", help="TLS private key."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N."),
        dtype: str = typer.Option("auto", "--dtype", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16, float16."),
        threads: Optional[int] = typer.Option(None, "--threads", help=THREADS_HELP),
    ) -> None:
        """Serve a model over HTTP: /v1/ask, OpenAI-compatible /v1/chat/completions, a live webcam page at /."""
        apply_threads(threads)  # before any model loads: torch, BLAS/OpenMP and FAISS alike
        try:  # the serve extra's packages; vidsift.serve itself imports below, so a bug in it shows as itself
            import starlette  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError as err:
            raise ConfigError("serve", f"needs the serve extra: pip install 'vidsift[serve]' ({err.name} is missing)") from None
        from ..serve import ServeConfig, check_port, is_loopback, serve as run_server
        from ..pipeline.pipeline import Pipeline

        if not 0 < port < 65536:
            raise ConfigError(f"--port {port}", "must be 1..65535")
        if bool(ssl_certfile) != bool(ssl_keyfile):
            raise ConfigError("--ssl-certfile/--ssl-keyfile", "give both or neither")
        check_port(host, port)  # a busy port fails here: before the model loads, before "serving on"
        config = ServeConfig(host=host, port=port, api_key=api_key, allowed_roots=list(allowed_root),
                             allowed_hosts=list(allowed_host),
                             allow_remote_urls=allow_remote_urls,
                             max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_duration_s=max_duration,
                             max_pixels=max_pixels, max_queue=max_queue, max_new_tokens=max_new_tokens,
                             max_uploads=max_uploads, header_timeout_s=header_timeout, body_timeout_s=body_timeout,
                             live_budget=live_budget, live_fps=live_fps, max_sessions=max_sessions)
        if host.strip("[]") in ("0.0.0.0", "::") and not allowed_host:
            typer.echo(f"note: --host {host} names no host: only requests whose Host header is localhost, 127.0.0.1 or "
                       "::1 are answered; add this machine's name or address with --allowed-host NAME", err=True)
        if not is_loopback(host) and config.api_key is None:
            typer.echo(f"warning: --host {host}: serving beyond this machine with no --api-key; anyone who can reach "
                       "the port can use the model", err=True)
        pipe = Pipeline.from_pretrained(model, device=device, dtype=dtype, budget=budget,
                                        max_new_tokens=max_new_tokens)
        scheme = "https" if ssl_certfile else "http"
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"vidsift serve: {pipe.name} on {scheme}://{shown}:{port}/ (live page), API under /v1"
                   f"{'' if config.api_key is None else ' (bearer token required)'}", err=True)
        extra = {"ssl_certfile": str(ssl_certfile), "ssl_keyfile": str(ssl_keyfile)} if ssl_certfile else {}
        try:
            stopped = run_server(pipe, config, log_level="debug" if os.environ.get("VIDSIFT_DEBUG") == "1" else "warning",
                                 **extra)
        except KeyboardInterrupt:
            stopped = True
        if stopped:  # the server has stopped (uploads dir removed, queue closed): leave now,
            # skipping the interpreter's teardown of torch and the model (2-3 s of a 5 s Ctrl-C budget)
            print("error: interrupted", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(130)
        sys.stderr.flush()
