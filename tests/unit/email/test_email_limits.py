"""Limits reject hostile shapes quickly, with a machine code and a human reason."""

from __future__ import annotations

import tracemalloc
from email import policy
from email.parser import BytesParser

import pytest

from normalizer.email import EmailLimits, EmailRejected, parse_email
from normalizer.email.limits import PartBudget
from normalizer.email.walk import walk_message

pytestmark = pytest.mark.unit

HEAD = b"From: a@example.ma\r\nTo: contact@cashplus.ma\r\nSubject: x\r\n"


def many_parts(count: int) -> bytes:
    parts = b"".join(
        b"--B\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % index for index in range(count)
    )
    return HEAD + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + parts + b"--B--\r\n"


def nested_multiparts(depth: int) -> bytes:
    opening = b"".join(
        b"--B%d\r\nContent-Type: multipart/mixed; boundary=B%d\r\n\r\n" % (level, level + 1)
        for level in range(depth)
    )
    closing = b"".join(b"--B%d--\r\n" % level for level in reversed(range(depth + 1)))
    leaf = b"--B%d\r\nContent-Type: text/plain\r\n\r\ndeep\r\n" % depth
    return HEAD + b"Content-Type: multipart/mixed; boundary=B0\r\n\r\n" + opening + leaf + closing


def nested_messages(depth: int) -> bytes:
    return (HEAD + b"Content-Type: message/rfc822\r\n\r\n") * depth + HEAD + b"\r\ninner\r\n"


def rejection(raw: bytes, limits: EmailLimits | None = None) -> tuple[EmailRejected, int]:
    """The refusal, and the peak memory it took (what a hostile mail costs, not how fast)."""
    tracemalloc.start()
    with pytest.raises(EmailRejected) as caught:
        parse_email(raw, limits)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return caught.value, peak


def test_ten_thousand_parts_are_rejected_in_little_memory():
    error, peak = rejection(many_parts(10_000))
    assert error.code == "too_many_parts"
    assert "200" in error.reason
    assert peak < 20 * 1024 * 1024


def test_thousand_nested_multiparts_are_rejected_before_the_parser_recurses():
    error, _peak = rejection(nested_multiparts(1_000))
    assert error.code == "too_deep"


def test_thousand_nested_messages_are_rejected_as_too_deep():
    error, _peak = rejection(nested_messages(1_000))
    assert error.code == "too_deep"


def test_two_hundred_parts_are_accepted():
    parsed = parse_email(many_parts(199))
    assert "part 198" in parsed.body


def test_twenty_levels_are_accepted_and_twenty_one_are_not():
    assert parse_email(nested_multiparts(19)).body == "deep"
    assert rejection(nested_multiparts(21))[0].code == "too_deep"


def test_walker_enforces_part_and_depth_budgets_on_the_parsed_tree():
    message = BytesParser(policy=policy.default).parsebytes(many_parts(6))
    with pytest.raises(EmailRejected) as caught:
        walk_message(message, PartBudget(EmailLimits(max_parts=5)))
    assert caught.value.code == "too_many_parts"
    message = BytesParser(policy=policy.default).parsebytes(nested_multiparts(3))
    with pytest.raises(EmailRejected) as caught:
        walk_message(message, PartBudget(EmailLimits(max_depth=2)))
    assert caught.value.code == "too_deep"


def test_oversized_message_is_rejected_before_parsing():
    raw = HEAD + b"\r\n" + b"x" * 2048
    assert rejection(raw, EmailLimits(max_bytes=1024))[0].code == "too_large"


def test_oversized_header_block_is_rejected():
    raw = HEAD + b"X-Junk: " + b"a" * 70_000 + b"\r\n\r\nbody\r\n"
    assert rejection(raw)[0].code == "header_too_large"


def test_oversized_header_block_inside_a_part_is_rejected():
    raw = (
        HEAD
        + b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
        + b"X-Junk: a\r\n" * 7_000
        + b"\r\nbody\r\n--B--\r\n"
    )
    assert rejection(raw)[0].code == "header_too_large"


def test_nested_comments_in_a_header_are_malformed_not_a_crash():
    raw = b"From: " + b"(" * 30_000 + b"a@example.ma\r\nTo: x@example.ma\r\n\r\nbody\r\n"
    error, _peak = rejection(raw)
    assert error.code == "malformed"


@pytest.mark.parametrize("raw", [b"", b"\r\n\r\n", b"just some text without headers\r\n"])
def test_input_that_is_not_a_mail_is_malformed(raw):
    assert rejection(raw)[0].code == "malformed"


def test_rejection_codes_are_checked():
    with pytest.raises(ValueError):
        EmailRejected("whatever", "no such code")
