"""Left-to-right runs in Arabic output: found, isolated in plain text, wrapped in HTML."""

from __future__ import annotations

import pytest

from gateway.acks.policy import Plan
from gateway.acks.senders import Outgoing
from gateway.acks.senders.mail import compose
from gateway.acks.senders.sms import MAX_SEGMENTS, segments, sms_text
from gateway.acks.texts import blocks, html_document
from gateway.cases.notices import notice_values
from gateway.lib.bidi import LRI, PDI, bdi, bdi_runs, isolate_runs, plain
from tests.unit.test_acks_texts import ZONE, complaint
from tests.unit.test_case_notices_and_products import extension, notice

pytestmark = pytest.mark.unit

REFERENCE = "CP-7K4M-9QXT"


def isolated(value: str) -> str:
    return f"{LRI}{value}{PDI}"


@pytest.mark.parametrize(
    "value",
    [
        "06 12 34 56 78",
        "+212 520 020 915",
        "0520020915",
        REFERENCE,
        "fatima.alaoui@example.ma",
        "1 250,00",
        "05/01/2027",
        "09:30",
    ],
)
def test_each_kind_of_run_is_isolated_whole_inside_arabic(value: str) -> None:
    assert isolate_runs(f"مثال: {value}، شكرا.") == f"مثال: {isolated(value)}، شكرا."


@pytest.mark.parametrize("text", ["داخل 10 أيام", "26 نونبر 2026", "كاش بلوس"])
def test_lone_numbers_and_dates_with_arabic_month_names_are_left_as_arabic(text: str) -> None:
    # "26 نونبر 2026" reads right to left, day first, in Arabic: isolating it would reverse it.
    assert isolate_runs(text) == text


def test_isolating_twice_changes_nothing() -> None:
    once = isolate_runs(f"الهاتف 06 12 34 56 78 والمرجع {REFERENCE}")
    assert isolate_runs(once) == once
    assert plain(once) == f"الهاتف 06 12 34 56 78 والمرجع {REFERENCE}"


def test_html_wraps_runs_and_marked_spans_in_bdi_and_escapes_the_rest() -> None:
    html = bdi_runs(f"<b>الهاتف</b> 06 12 34 56 78 و{LRI}10/W/16{PDI}")
    assert str(html) == (
        '&lt;b&gt;الهاتف&lt;/b&gt; <bdi dir="ltr">06 12 34 56 78</bdi>'
        ' و<bdi dir="ltr">10/W/16</bdi>'
    )
    assert str(bdi("<x>")) == '<bdi dir="ltr">&lt;x&gt;</bdi>'


def test_the_arabic_sms_isolates_the_reference_and_the_date() -> None:
    outgoing = Outgoing(complaint("ar"), Plan("sms", "+212612345678", ("ar",)), "<a@host>")
    text = sms_text(outgoing, ZONE, 40)
    assert isolated(REFERENCE) in text
    assert isolated("05/01/2027") in text
    assert segments(text)[1] <= MAX_SEGMENTS


def test_the_arabic_extension_sms_isolates_the_reference_and_the_new_date() -> None:
    text = sms_text(extension("ar"), ZONE, 40)
    assert isolated(REFERENCE) in text and isolated("14/02/2027") in text
    assert segments(text)[1] <= MAX_SEGMENTS


@pytest.mark.parametrize("tag", ["fr", "en", "es"])
def test_other_languages_sms_stay_free_of_marks(tag: str) -> None:
    # A mark would turn a French SMS from GSM-7 into UCS-2 and double its cost.
    outgoing = Outgoing(complaint(tag), Plan("sms", "+212612345678", (tag,)), "<a@host>")
    text = sms_text(outgoing, ZONE, 40)
    assert LRI not in text and PDI not in text
    if tag == "fr":
        assert segments(text) == ("GSM-7", 1)


def test_the_arabic_text_email_isolates_reference_phone_and_address() -> None:
    [arabic, french] = blocks(complaint("ar"), "email", ZONE, 40)
    assert arabic.language == "ar"
    assert isolated(REFERENCE) in arabic.text
    assert isolated("0520020915") in arabic.text
    assert isolated("contact@cashplus.ma") in arabic.text
    assert isolated(REFERENCE) in arabic.subject
    assert LRI not in french.text  # the French block below is unchanged


def test_the_arabic_extension_email_isolates_the_reference() -> None:
    parts = blocks(complaint("ar"), "extension/email", ZONE, 40, notice_values(notice(), ZONE))
    assert isolated(REFERENCE) in parts[0].text and isolated("0520020915") in parts[0].text


def test_the_html_email_has_bdi_and_no_marks() -> None:
    message = complaint("ar")
    parts = blocks(message, "email", ZONE, 40)
    html = html_document(parts, parts[0].subject, message.reference)
    body = html[html.index("<body") :]
    assert f'<bdi dir="ltr" style="white-space:nowrap;">{REFERENCE}</bdi>' in body
    assert '<bdi dir="ltr" style="white-space:nowrap;">0520020915</bdi>' in body
    assert LRI not in body and PDI not in body


def test_the_composed_arabic_email_carries_marks_in_text_and_bdi_in_html() -> None:
    message = complaint("ar")
    outgoing = Outgoing(message, Plan("email", "fatima@example.ma", ("ar",)), "<ack.x@host>")
    mail = compose(outgoing, blocks(message, "email", ZONE, 40), "ack@cashplus.ma")
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert isolated("0520020915") in text
    assert '<bdi dir="ltr" style="white-space:nowrap;">0520020915</bdi>' in html
