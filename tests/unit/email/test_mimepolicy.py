"""The parsing policy reuses parsed header objects without changing what is read."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from normalizer.email.mimepolicy import POLICY

RAW = (
    b"From: Client <client@example.ma>\r\n"
    b"content-type: text/plain; charset=utf-8; format=flowed\r\n"
    b"Subject: =?utf-8?q?R=C3=A9clamation?=\r\n"
    b"X-Long: " + b"a" * 3000 + b"\r\n"
    b"\r\n"
    b"Bonjour\r\n"
)


def test_repeated_reads_of_a_header_share_one_parsed_object() -> None:
    message = BytesParser(policy=POLICY).parsebytes(RAW)
    assert message["Content-Type"] is message["Content-Type"]
    assert message.get_content_type() == "text/plain"
    assert message.get_param("format") == "flowed"


def test_long_values_are_parsed_each_time() -> None:
    message = BytesParser(policy=POLICY).parsebytes(RAW)
    assert message["X-Long"] == "a" * 3000
    assert message["X-Long"] is not message["X-Long"]


def test_what_is_read_and_written_equals_the_default_policy() -> None:
    ours = BytesParser(policy=POLICY).parsebytes(RAW)
    stock = BytesParser(policy=policy.default).parsebytes(RAW)
    for name in ("From", "Content-Type", "Subject"):
        assert str(ours[name]) == str(stock[name])
        assert ours[name].defects == stock[name].defects
    # The name keeps the spelling of its own mail, not of an earlier one.
    assert ours.as_bytes(policy=POLICY) == stock.as_bytes(policy=policy.default)
    assert b"content-type:" in ours.as_bytes(policy=POLICY)
