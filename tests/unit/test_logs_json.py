"""JSON log lines: one object per event, the complaint id on each, personal data masked."""

import io
import json
import logging

from gateway.lib.logs import FORMATTERS, MaskingFilter, complaint_context


def emit(log_format: str, message: str, *args: object, exc: bool = False) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(FORMATTERS[log_format]())
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(f"intake.test.{log_format}")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        if exc:
            try:
                raise ValueError("card 4111 1111 1111 1111 refused")
            except ValueError:
                logger.exception(message, *args)
        else:
            logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_json_line_carries_time_level_logger_message_and_complaint_id() -> None:
    with complaint_context("c-42"):
        output = emit("json", "recorded complaint %s", "CP-7K4M-9QXT")
    assert output.count("\n") == 1
    document = json.loads(output)
    assert document["complaint"] == "c-42"
    assert document["level"] == "WARNING"
    assert document["logger"] == "intake.test.json"
    assert document["message"] == "recorded complaint CP-7K4M-9QXT"
    assert document["time"].endswith("+00:00")


def test_json_line_masks_arguments_and_exceptions() -> None:
    output = emit("json", "mail from %s", "fatima.zahra@gmail.com\nline two", exc=True)
    document = json.loads(output)  # one line, whatever the message held
    assert "fatima.zahra@gmail.com" not in output
    assert "4111 1111 1111 1111" not in output
    assert "ValueError" in document["exception"]


def test_text_format_stays_one_readable_line() -> None:
    with complaint_context("c-7"):
        output = emit("text", "appelez le 0661234567")
    assert "[complaint=c-7]" in output
    assert "0661234567" not in output
