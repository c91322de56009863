"""Fuzzing the small parsers every channel relies on, and the log masking.

- references: a customer dictates or types them; anything is parsed or
  refused with ``InvalidReference``, every valid one round-trips, and the
  check character catches any single wrong character and any swap of two
  neighbours (what the README promises);
- deadlines: for any receipt time, the last second of a Casablanca day, 10
  and 40 calendar days after the local receipt date;
- the language detector: never raises, always a BCP 47 tag, the same answer
  twice;
- phone numbers: E.164 or ``InvalidContact``, and normalizing twice changes
  nothing;
- log masking: a phone, e-mail, card or CIN number written anywhere in a
  sentence does not survive ``mask_personal_data``.

Short in CI; ``INTAKE_LONG_FUZZ=1`` (``scripts/fuzz``) runs a hundred times more.
"""

from __future__ import annotations

import os
import re
import string
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from gateway.lib.logs import mask_personal_data
from normalizer.contact import InvalidContact, to_e164
from normalizer.contract import E164_PATTERN, LANGUAGE_TAG_PATTERN, REFERENCE_PATTERN
from normalizer.deadlines import compute_deadlines
from normalizer.language import detect_text_language
from normalizer.reference import (
    ALPHABET,
    InvalidReference,
    find_references,
    format_reference,
    is_valid_body,
    parse_reference,
)

LONG = bool(os.environ.get("INTAKE_LONG_FUZZ"))
CASABLANCA = ZoneInfo("Africa/Casablanca")


def fuzz(examples: int):  # type: ignore[no-untyped-def]
    return settings(
        max_examples=examples * (100 if LONG else 1),
        deadline=timedelta(seconds=5),
        database=DirectoryBasedExampleDatabase("var/hypothesis") if LONG else None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=not LONG,
    )


# -- references ------------------------------------------------------------------
@st.composite
def valid_references(draw) -> str:  # type: ignore[no-untyped-def]
    payload = draw(st.text(alphabet=ALPHABET, min_size=7, max_size=7))
    check = next(char for char in ALPHABET if is_valid_body(payload + char))
    return format_reference(payload + check)


@fuzz(100)
@given(st.text(max_size=40) | st.from_regex(r"\A[cC][pP][ -]?[0-9A-Za-z -]{6,12}\Z"))
def test_any_text_is_a_reference_or_refused_with_invalid_reference(text: str) -> None:
    try:
        reference = parse_reference(text)
    except InvalidReference:
        return
    assert re.fullmatch(REFERENCE_PATTERN, reference)


@fuzz(60)
@given(valid_references(), st.sampled_from(["{}", "{} ", "{}".lower(), "cp {}"]))
def test_a_valid_reference_round_trips_however_it_is_typed(reference: str, shape: str) -> None:
    typed = shape.format(reference[3:]) if shape.startswith("cp") else shape.format(reference)
    assert parse_reference(typed.lower()) == reference
    assert parse_reference(reference.replace("-", "")) == reference


@fuzz(100)
@given(valid_references(), st.integers(0, 7), st.sampled_from(ALPHABET))
def test_one_wrong_character_is_always_caught(reference: str, index: int, char: str) -> None:
    body = reference.replace("CP-", "").replace("-", "")
    if body[index] == char:
        return
    wrong = body[:index] + char + body[index + 1 :]
    with pytest.raises(InvalidReference):
        parse_reference("CP" + wrong)


@fuzz(100)
@given(valid_references(), st.integers(0, 6))
def test_two_swapped_neighbours_are_always_caught(reference: str, index: int) -> None:
    body = reference.replace("CP-", "").replace("-", "")
    if body[index] == body[index + 1]:
        return
    swapped = body[:index] + body[index + 1] + body[index] + body[index + 2 :]
    with pytest.raises(InvalidReference):
        parse_reference("CP" + swapped)


@fuzz(60)
@given(st.text(max_size=200), valid_references(), st.text(max_size=50))
def test_a_reference_quoted_in_any_text_is_found(before: str, reference: str, after: str) -> None:
    found = find_references(f"{before} {reference} {after}")
    assert reference in found
    assert all(re.fullmatch(REFERENCE_PATTERN, item) for item in found)


# -- deadlines -------------------------------------------------------------------
@fuzz(100)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31), timezones=st.just(UTC)
    )
)
def test_deadlines_are_the_last_second_of_the_10th_and_40th_local_day(received: datetime) -> None:
    deadlines = compute_deadlines(received)

    local_day = received.astimezone(CASABLANCA).date()
    for due, days in ((deadlines.ack_due_at, 10), (deadlines.answer_due_at, 40)):
        local = due.astimezone(CASABLANCA)
        assert local.date() == local_day + timedelta(days=days)
        assert local.time() == time(23, 59, 59)
    assert received < deadlines.ack_due_at < deadlines.answer_due_at


# -- language --------------------------------------------------------------------
SCRIPTS = st.text(
    alphabet=st.characters(
        codec="utf-8",
        categories=("L", "M", "N", "P", "Z", "S"),
    ),
    max_size=300,
)
MIXED = st.lists(
    st.sampled_from(
        ["salam", "bghit", "3lach", "flous", "transfert", "carte", "مرحبا", "التحويل",
         "ⵜⴰⵎⴰⵣⵉⵖⵜ", "money", "dinero", "n3ref", "wach", "!!!", "0661234567", "CP-2222-2222"]
    ),
    max_size=30,
).map(" ".join)  # fmt: skip


@fuzz(80)
@given(SCRIPTS | MIXED | st.text(max_size=100))
def test_language_detection_never_raises_and_gives_the_same_answer_twice(text: str) -> None:
    first = detect_text_language(text)

    assert re.fullmatch(LANGUAGE_TAG_PATTERN, first.tag)
    assert 0.0 <= first.confidence <= 1.0
    assert detect_text_language(text) == first


# -- phone numbers ---------------------------------------------------------------
PHONE_LIKE = st.from_regex(r"\A(\+|00)?[0-9 .()\-]{0,20}\Z") | st.text(
    alphabet=string.digits + "+ -().whatsap:", max_size=25
)


@fuzz(150)
@given(PHONE_LIKE | st.text(max_size=30))
def test_a_phone_number_is_e164_or_refused_and_normalizing_twice_changes_nothing(
    raw: str,
) -> None:
    try:
        number = to_e164(raw)
    except InvalidContact as exc:
        assert exc.field == "phone"
        return
    assert re.fullmatch(E164_PATTERN, number)
    assert to_e164(number) == number


# -- log masking -----------------------------------------------------------------
MOROCCAN_MOBILE = st.builds(
    lambda first, rest, sep: "0" + first + sep.join([rest[:2], rest[2:4], rest[4:6], rest[6:]]),
    st.sampled_from("567"),
    st.text(alphabet=string.digits, min_size=8, max_size=8),
    st.sampled_from(["", " ", ".", "-"]),
)
INTERNATIONAL = st.builds(
    lambda prefix, first, rest: f"{prefix}212 {first}{rest}",
    st.sampled_from(["+", "00"]),
    st.sampled_from("567"),
    st.text(alphabet=string.digits, min_size=8, max_size=8),
)
CARD = st.builds(
    lambda digits, sep: sep.join(digits[i : i + 4] for i in range(0, 16, 4)),
    st.text(alphabet=string.digits, min_size=16, max_size=16),
    st.sampled_from(["", " ", "-"]),
)
CIN = st.builds(
    lambda letters, digits: letters + digits,
    st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=2),
    st.text(alphabet=string.digits, min_size=5, max_size=6),
)
# Addresses as people have them (RFC 5322 also allows ' { } ! # in the local part:
# the masking leaves those partly visible, see docs/security.md).
EMAIL = st.from_regex(r"\A[a-z0-9][a-z0-9._+-]{1,20}@[a-z0-9-]{1,12}\.(ma|com|fr)\Z")
WORDS = st.text(alphabet=string.ascii_letters + "éàç ,;:()'\n", max_size=40)


@fuzz(150)
@given(MOROCCAN_MOBILE | INTERNATIONAL | CARD | CIN | EMAIL, WORDS, WORDS)
def test_personal_data_anywhere_in_a_log_line_is_masked(
    secret: str, before: str, after: str
) -> None:
    line = f"{before} {secret} {after}"

    masked = mask_personal_data(line)

    assert secret not in masked
    digits = re.sub(r"\D", "", secret)
    if len(digits) >= 8:
        assert digits[-8:-2] not in re.sub(r"\D", "", masked)
