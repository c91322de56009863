"""The notice of a longer delay in every language, and the product rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import channels.webform
from gateway.acks.policy import Plan
from gateway.acks.senders import Outgoing
from gateway.acks.senders.letter import render_letter
from gateway.acks.senders.sms import MAX_SEGMENTS, segments, sms_text
from gateway.acks.texts import TEMPLATE_LANGUAGES, blocks
from gateway.cases.notices import notice_values
from gateway.store.cases import TRANSITIONS, Notice
from normalizer.product import detect_product, product_codes
from tests.unit.test_acks_texts import ZONE, complaint

pytestmark = pytest.mark.unit

NEW_DUE = datetime(2027, 2, 14, 22, 59, 59, tzinfo=UTC)


def notice(reason: str | None = "documents") -> Notice:
    return Notice(
        "n1", "c1", "CP-7K4M-9QXT", "extension", "pending", 0, None, None, None, NEW_DUE, reason
    )


def extension(tag: str, reason: str | None = "documents") -> Outgoing:
    return Outgoing(
        complaint(tag),
        Plan("sms", "+212612345678", ("fr",)),
        "<n.x@host>",
        notice="extension",
        values=notice_values(notice(reason), ZONE),
    )


@pytest.mark.parametrize("tag", ["fr", "ar", "en", "es", "zgh-Tfng", "ber-Latn"])
def test_the_extension_email_gives_the_new_deadline_in_the_customers_language(tag: str) -> None:
    parts = blocks(complaint(tag), "extension/email", ZONE, 40, notice_values(notice(), ZONE))
    text = "\n".join(part.text for part in parts)
    assert "CP-7K4M-9QXT" in text
    assert "2027" in text and "14" in text
    assert all("CP-7K4M-9QXT" in part.subject for part in parts)
    assert parts[0].language == {"ar": "ar"}.get(tag, tag)


@pytest.mark.parametrize("tag", ["fr", "ar", "en", "es", "zgh-Tfng", "ber-Latn"])
def test_the_extension_sms_fits_and_gives_the_new_date(tag: str) -> None:
    text = sms_text(extension(tag), ZONE, 40)
    assert "14/02/2027" in text
    assert segments(text)[1] <= MAX_SEGMENTS, text


@pytest.mark.parametrize("language", TEMPLATE_LANGUAGES)
def test_each_reason_is_worded_differently(language: str) -> None:
    texts = {
        reason: blocks(
            complaint(language), "extension/email", ZONE, 40, notice_values(notice(reason), ZONE)
        )[0].text
        for reason in ("investigation", "third_party", "documents")
    }
    assert len(set(texts.values())) == 3


@pytest.mark.parametrize("tag", ["fr", "zgh-Tfng"])
def test_the_extension_letter_renders(tag: str) -> None:
    document = render_letter(extension(tag), ZONE, 40, datetime(2026, 12, 20, tzinfo=UTC))
    assert document.startswith(b"%PDF")


def test_a_closed_complaint_can_take_nothing_and_an_answer_only_a_closing() -> None:
    assert TRANSITIONS["closed"] == frozenset()
    assert TRANSITIONS["answered"] == frozenset({"closed"})


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("salam, la carte dyali tblokat f guichet automatique", "card"),
        ("Bonjour, mon transfert Western Union n'est jamais arrivé", "money_transfer"),
        ("الفاتورة ديال lydec ما تخلصاتش", "bill_payment"),
        ("l'application ne marche plus, mon portefeuille est vide", "wallet"),
        ("L'agent de l'agence m'a mal reçu", "agency_service"),
        ("Mi tarjeta no funciona en el cajero", "card"),
    ],
)
def test_the_rules_name_the_product_of_a_plain_text(text: str, code: str) -> None:
    guess = detect_product(text)
    assert guess is not None and guess.code == code
    assert guess.method == "rules" and 0.5 <= guess.confidence <= 1


@pytest.mark.parametrize("text", ["Bonjour, je suis mécontent", "ma carte et mon transfert", ""])
def test_the_rules_say_nothing_when_unsure(text: str) -> None:
    assert detect_product(text) is None


def test_the_rules_use_the_web_forms_product_codes() -> None:
    form = json.loads((Path(channels.webform.__file__).parent / "products.json").read_text())
    assert product_codes() <= {item["code"] for item in form["products"]}


def test_the_status_contract_uses_the_complaint_contracts_patterns() -> None:
    import normalizer.contract
    import normalizer.status

    assert normalizer.status.REFERENCE_PATTERN == normalizer.contract.REFERENCE_PATTERN
    assert normalizer.status.SCHEMA_VERSION_PATTERN == normalizer.contract.SCHEMA_VERSION_PATTERN
