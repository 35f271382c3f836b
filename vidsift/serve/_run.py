"""Running the app with uvicorn: in the foreground (the CLI) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from ._config import ServeConfig


def _uvicorn_config(app: Any, config: ServeConfig, *, log_level: str = "warning", **extra: Any) -> Any:
    import uvicorn

    from ._guard import header_timeout_protocol

    return uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level, lifespan="on",
                          http=header_timeout_protocol(config.header_timeout_s),
                          ws="auto", ws_max_size=config.max_frame_bytes + 4096,
                          timeout_graceful_shutdown=3, server_header=False, **extra)


def serve(pipeline: Any, config: ServeConfig, *, log_level: str = "info", **uvicorn_options: Any) -> bool:
    """Serve ``pipeline`` until interrupted (what ``vidsift serve`` runs); True when a signal
    stopped it. uvicorn raises the signal again once it has stopped, but a process that inherited
    SIGINT ignored (started in the background by a script) gets no KeyboardInterrupt from that,
    so the caller asks this instead."""
    import uvicorn

    from ._app import create_app

    server = uvicorn.Server(_uvicorn_config(create_app(pipeline, config), config, log_level=log_level, **uvicorn_options))
    server.run()
    return bool(server.should_exit)


def check_port(host: str, port: int) -> None:
    """Raise ``ConfigError("HOST:PORT", "address already in use")`` (or the bind's own reason)
    when uvicorn could not bind there; checked before the model loads and before anything says
    it serves. Binds as uvicorn does (``SO_REUSEADDR``), then lets go."""
    import errno

    from ..errors import ConfigError

    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ConfigError(shown, f"cannot bind ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as err:
            reason = "address already in use" if err.errno == errno.EADDRINUSE else f"cannot bind ({err.strerror})"
            raise ConfigError(shown, reason) from None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """The app served by uvicorn in a daemon thread: ``url``, ``app``, ``stop()``; a context manager.

        with ServerThread(pipeline, ServeConfig(port=0)) as server:   # port 0: a free port
            httpx.get(server.url + "/healthz")
    """

    def __init__(self, pipeline: Any, config: ServeConfig | None = None, *, start_timeout_s: float = 30.0) -> None:
        import uvicorn

        from ._app import create_app

        self.config = config or ServeConfig()
        if not self.config.port:
            self.config.port = free_port(self.config.host)
        self.app = create_app(pipeline, self.config)
        self.server = uvicorn.Server(_uvicorn_config(self.app, self.config))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  (not the main thread)
        self.thread = threading.Thread(target=self.server.run, name="vidsift-serve", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"vidsift serve did not start on {self.config.host}:{self.config.port}")
            time.sleep(0.02)
        self.url = f"http://{self.config.host}:{self.config.port}"

    def stop(self, timeout_s: float = 15.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)

    def __enter__(self) -> "ServerThread":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
