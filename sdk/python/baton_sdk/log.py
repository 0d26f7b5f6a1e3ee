"""Structured logging: lines are captured per call and shown with the step.

    from baton_sdk import log
    log.info("fetched 3 vendors")

Outside a component (unit tests) lines go to stderr. Never log secrets (the host
redacts granted secret values anyway).
"""

import sys

from . import _wit

__all__ = ["trace", "debug", "info", "warn", "warning", "error"]


def _log(level, message):
    message = str(message)
    if _wit.log is not None:
        _wit.log.log(getattr(_wit.log.Level, level.upper()), message)
    else:
        print(f"[{level}] {message}", file=sys.stderr)


def trace(message):
    _log("trace", message)


def debug(message):
    _log("debug", message)


def info(message):
    _log("info", message)


def warn(message):
    _log("warn", message)


warning = warn


def error(message):
    _log("error", message)
