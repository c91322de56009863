import logging

import pytest

from gateway.lib.logs import MaskingFilter, complaint_context, mask_personal_data


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("appelez le 0661234567", "0661234567"),
        ("tel: 06 61 23 45 67", "06 61 23 45 67"),
        ("whatsapp:+212661234567", "+212661234567"),
        ("from 00212 5 20 02 09 15", "00212 5 20 02 09 15"),
        ("écrire à fatima.zahra@gmail.com", "fatima.zahra@gmail.com"),
        ("carte 4111 1111 1111 1111 bloquée", "4111 1111 1111 1111"),
        ("card 5105105105105100", "5105105105105100"),
        ("CIN BE123456", "BE123456"),
        ("cin A12345", "A12345"),
        ("cin be123456", "be123456"),
        ("écrivez à o'brien.x@example.ma", "o'brien.x@example.ma"),
    ],
)
def test_personal_data_is_masked(text: str, secret: str) -> None:
    masked = mask_personal_data(text)
    assert secret not in masked
    assert masked != text


def test_references_amounts_and_dates_stay_readable() -> None:
    text = "réclamation CP-HUXP-DTH9 du 2026-11-26, montant 1500 DH"
    assert mask_personal_data(text) == text


def test_filter_masks_arguments_and_adds_the_complaint_id() -> None:
    record = logging.LogRecord("intake", logging.INFO, __file__, 1, "from %s", ("a@b.ma",), None)
    with complaint_context("c-42"):
        MaskingFilter().filter(record)
    assert "a@b.ma" not in record.getMessage()
    assert record.complaint == "c-42"  # type: ignore[attr-defined]
