"""``vidsift serve``: an HTTP API and a live web page for one loaded model.

Public API (loaded lazily; needs the ``serve`` extra: ``pip install 'vidsift[serve]'``)::

    create_app(pipeline, ServeConfig(...))   # the ASGI app (Starlette): /v1/ask, /v1/chat/completions,
                                             # /v1/models, /v1/live (WebSocket), /healthz, /metrics, / (page)
    serve(pipeline, config)                  # run it with uvicorn in the foreground (the CLI)
    ServerThread(pipeline, config)           # run it in a thread: .url, .stop(); tests and benchmarks
    ServeConfig                              # limits and defaults (token, allowed roots, upload caps, ...)
    is_loopback(host)                        # whether a --host binds to loopback only
    check_port(host, port)                   # ConfigError "HOST:PORT: address already in use" before serving

Stack: Starlette + uvicorn (why: the docstring of ``_app``). Routes and security defaults are
described in the README's "Serving" section; module
docstrings: _app (routes, why Starlette), _guard (Host/Origin checks, CORS preflights, read
timeouts, the upload cap), _engine (the model queue), _media (uploads, paths, limits), _openai
(chat completions), _live (the page's WebSocket protocol).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"ServeConfig": "_config", "is_loopback": "_config", "create_app": "_app", "serve": "_run", "ServerThread": "_run", "free_port": "_run",
         "check_port": "_run"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
