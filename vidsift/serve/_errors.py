"""`HTTPProblem`: a client error with its status and a one-line reason, as JSON.

The body has OpenAI's error shape, so OpenAI clients raise their usual exceptions with the
message: ``{"error": {"message": "<input>: <reason>", "type": "invalid_request_error", "code": 413}}``.
"""

from __future__ import annotations

from typing import Any

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 408: "timeout_error", 413: "request_too_large", 415: "invalid_request_error",
          422: "invalid_request_error", 503: "server_overloaded", 500: "server_error"}


def one_line(text: str, limit: int = 500) -> str:
    """The first line of ``text`` (never a traceback), at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class HTTPProblem(Exception):
    """An error for the client: ``status`` (4xx/5xx) and ``message`` (one line)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.status = int(status)
        self.message = one_line(message)
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": _TYPES.get(self.status, "invalid_request_error"),
                          "code": self.status}}
