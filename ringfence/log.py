"""Logging for every ringfence process: structlog, as text or JSON."""
from __future__ import annotations

import logging
import os
import sys

import structlog

# (level, log_format, stream) of the last configure(), for redirect() and
# current_fd(); no stream before the first configure().
_settings = (logging.INFO, "text", None)


def configure(debug: bool = False, log_path: str | None = None, log_format: str = "text",
              stream=None, quiet: bool = False, level: int | None = None) -> None:
    """Send structured logs to `log_path` (default stderr) at INFO, DEBUG with `debug`, or
    only errors with `quiet` (`level`, if given, decides instead).

    Everything the renderers need is imported and exercised here, because the
    sentry cannot import (open files) once it is confined.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"--log-format must be text or json, not {log_format!r}")
    global _settings
    out = stream or (open(log_path, "a", buffering=1) if log_path else sys.stderr)
    renderer = (structlog.processors.JSONRenderer() if log_format == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    if level is None:
        level = logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO
    _settings = (level, log_format, out)
    processors = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # Warm up every processor once (lazy imports happen now, not when confined).
    event = {"event": "warm-up"}
    for proc in processors:
        event = proc(None, "debug", event)


def current_fd() -> int | None:
    """The host fd the logs are written to (None: they are not written to an fd)."""
    try:
        return _settings[2].fileno()
    except (AttributeError, OSError, ValueError):
        return None


def redirect(stream) -> None:
    """Keep the current settings but write the logs to `stream`."""
    level, log_format, _ = _settings
    configure(level=level, log_format=log_format, stream=stream)


class FdStream:
    """A log stream on a raw fd that never blocks its writer or raises: a line
    that does not fit (a full FIFO nobody reads, say) is dropped."""

    def __init__(self, fd: int):
        self.fd = fd

    def write(self, text: str) -> int:
        try:
            return os.write(self.fd, text.encode(errors="replace"))
        except OSError:
            return 0

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fd
