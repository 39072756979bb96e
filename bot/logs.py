"""Logging for every specbridge process (web, worker, their forks), set up one way.

Plain text by default; `SPECBRIDGE_LOG_FORMAT=json` writes one JSON object a
line, with the fields a record was given (`extra=`: delivery, event, spec,
writes…) as keys of their own, for a log collector to index.

What a line belongs to follows it without being passed along: `log_context()`
binds ids (the delivery being processed, its repository, the agent task
running) in a contextvar for as long as the work lasts, and every record
created meanwhile, in that thread or task, by any logger (ours, gunicorn's,
RQ's, a library's), carries them. In JSON they are keys of the line (a
record's own `extra=` wins); in text, ids the message does not already show
are appended as `[delivery=… task=…]`.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from bot.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Where a record keeps the context it was created in (one attribute: `extra=` keys of
# the same names must not collide with it, as they would as attributes of their own).
CONTEXT_ATTRIBUTE = "specbridge_context"
# What every LogRecord carries; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    CONTEXT_ATTRIBUTE,
}
# Ids shown in text lines when the message lacks them, in this order.
TEXT_IDS = ("delivery", "task", "spec", "repository")
# RQ's INFO lines kept: a worker starting, listening, stopping. Its five a job
# (started, OK, result kept, registries cleaned…) say nothing ours do not.
_RQ_KEPT = ("started with PID", "Listening on", "shut down", "stopping", "quitting", "stopped")

_context: ContextVar[dict[str, Any]] = ContextVar("specbridge_log_context", default={})  # noqa: B039


# Where an exception keeps the context it left (see failure_context).
_FAILED_IN = "_specbridge_log_context"


@contextmanager
def log_context(**ids: Any) -> Iterator[None]:
    """Every log line inside carries these ids (None values are left out), over outer ones.

    An exception that leaves it takes the ids along (the innermost context it left, the
    fullest): the line that reports it, logged outside (a queue's "job failed"), gets
    them from `failure_context`."""
    token = _context.set({**_context.get(), **{k: v for k, v in ids.items() if v is not None}})
    try:
        yield
    except BaseException as error:
        if not hasattr(error, _FAILED_IN):
            with suppress(AttributeError, TypeError):  # some exceptions take no attributes
                setattr(error, _FAILED_IN, _context.get())
        raise
    finally:
        _context.reset(token)


def failure_context(error: BaseException | None) -> dict[str, Any]:
    """The ids of the log context `error` was raised in (empty if none): for the line that
    reports a failure after its work's context is gone."""
    return dict(getattr(error, _FAILED_IN, None) or {})


def current_log_context() -> dict[str, Any]:
    return dict(_context.get())


def _install_record_factory() -> None:
    """Records take the context they were created in; installed once per process."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "specbridge", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        setattr(record, CONTEXT_ATTRIBUTE, _context.get())
        return record

    factory.specbridge = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The context's ids and the record's own `extra=` fields (which win)."""
    fields = dict(getattr(record, CONTEXT_ATTRIBUTE, None) or {})
    fields.update(
        (key, value) for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES
    )
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(record_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, then the context's ids the message does not show already."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        context = getattr(record, CONTEXT_ATTRIBUTE, None) or {}
        missing = [
            f"{key}={context[key]}"
            for key in TEXT_IDS
            if key in context and str(context[key]) not in record.message
        ]
        return f"{text} [{' '.join(missing)}]" if missing else text


def quiet_rq(record: logging.LogRecord) -> bool:
    """RQ's per-job INFO lines are left out; its warnings, errors and start and stop stay."""
    if not record.name.startswith("rq.") or record.levelno >= logging.WARNING:
        return True
    return any(kept in str(record.msg) for kept in _RQ_KEPT)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record comes, as logging's last resort
    does: a stream replaced later (a test's capture, a daemon's redirect) is followed."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


def log_formatter(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.log_format == "json" else TextFormatter()


def configure_logging(settings: Settings) -> None:
    """INFO and above to stderr, in the configured format; calling it again replaces ours."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "specbridge", False)]:
        root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(log_formatter(settings))
    handler.addFilter(quiet_rq)
    handler.specbridge = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
