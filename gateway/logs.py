"""Logging set-up: named loggers, the complaint id on every line, personal data masked.

Complaint texts are full of phone numbers, e-mail addresses, card numbers and
national ID (CIN) numbers. None of them may reach a log file: the filter
below masks them in every record, whatever logger wrote it, before any
handler formats it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

current_complaint: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_complaint", default="-"
)

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]{1,64})@([\w-]+(?:\.[\w-]+)+)", re.UNICODE)
# 13 to 19 digits, optionally grouped by spaces or dashes: payment card numbers.
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Phone numbers: +212..., 00212..., 06/07/05 followed by 8 digits, with separators.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+|00)\d{1,3}[\s.-]?\d(?:[\s.-]?\d){6,12}(?!\d)"
    r"|(?<!\d)0[5-7](?:[\s.-]?\d){8}(?!\d)"
)
# Moroccan CIN: one or two letters then 4 to 6 digits (A123456, BE12345).
_CIN = re.compile(r"\b[A-Z]{1,2}\d{4,6}\b")


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


def setup_logging(level: str = "INFO") -> None:
    """Plain-text logs on stderr, masked, for every logger of the process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
