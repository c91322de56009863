"""Logging set-up: named loggers, the complaint id on every line, personal data masked.

Complaint texts are full of phone numbers, e-mail addresses, card numbers and
national ID (CIN) numbers. None of them may reach a log file: the filter
below masks them in every record, whatever logger wrote it, before any
handler formats it.

Two formats (``INTAKE_LOG_FORMAT``): ``text``, one readable line per event,
for a developer's terminal; ``json``, one JSON object per line (``time``,
``level``, ``logger``, ``message``, ``complaint``, ``process``, and
``exception`` when there is one) for a log pipeline to search by field.
Masking happens before either formatter sees the record.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

current_complaint: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_complaint", default="-"
)

# Local part: every character RFC 5322 allows unquoted (o'brien@, a+b@).
_LOCAL = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(rf"(?<!{_LOCAL})({_LOCAL}{{1,64}})@([\w-]+(?:\.[\w-]+)+)", re.UNICODE)
# 13 to 19 digits, optionally grouped by spaces or dashes: payment card numbers.
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Phone numbers: +212..., 00212..., 06/07/05 followed by 8 digits, with separators.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+|00)\d{1,3}[\s.-]?\d(?:[\s.-]?\d){6,12}(?!\d)"
    r"|(?<!\d)0[5-7](?:[\s.-]?\d){8}(?!\d)"
)
# Moroccan CIN: one or two letters then 4 to 6 digits (A123456, BE12345).
_CIN = re.compile(r"\b[A-Z]{1,2}\d{4,6}\b", re.IGNORECASE)


def mask_personal_data(text: str) -> str:
    """Replace e-mail addresses, card, phone and CIN numbers with masked forms."""
    text = _EMAIL.sub(lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", text)
    text = _CARD.sub(lambda m: _keep_tail(m.group(0), 4, "card"), text)
    text = _PHONE.sub(lambda m: _keep_tail(m.group(0), 2, "phone"), text)
    return _CIN.sub(lambda m: m.group(0)[:1] + "*****", text)


def _keep_tail(value: str, keep: int, label: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"[{label} …{digits[-keep:]}]"


class MaskingFilter(logging.Filter):
    """Masks personal data in the message and its arguments; adds the complaint id."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.complaint = current_complaint.get()
        try:
            message = record.getMessage()
        except Exception:  # a malformed log call must not lose the line
            message = str(record.msg)
        record.msg = mask_personal_data(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_personal_data(
                logging.Formatter().formatException(record.exc_info)
            )
        return True


@contextmanager
def complaint_context(complaint_id: str) -> Iterator[None]:
    token = current_complaint.set(complaint_id)
    try:
        yield
    finally:
        current_complaint.reset(token)


FORMAT = "%(asctime)s %(levelname)s %(name)s [complaint=%(complaint)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the record was masked by ``MaskingFilter`` already."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "complaint": getattr(record, "complaint", current_complaint.get()),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            # Masked again: another handler may have formatted the traceback first.
            document["exception"] = mask_personal_data(record.exc_text)
        return json.dumps(document, ensure_ascii=False, default=str)


FORMATTERS: dict[str, Callable[[], logging.Formatter]] = {
    "text": lambda: logging.Formatter(FORMAT),
    "json": JsonFormatter,
}


def setup_logging(level: str = "INFO", log_format: str | None = None) -> None:
    """Masked logs on stderr for every logger of the process, as text or JSON lines.

    ``log_format`` None: the configured ``INTAKE_LOG_FORMAT`` (text if unreadable).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[log_format or _configured_format()]())
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _configured_format() -> str:
    from config.settings import ConfigError, get_settings

    try:
        return get_settings().log_format
    except ConfigError:  # the caller reports bad settings itself
        return "text"
