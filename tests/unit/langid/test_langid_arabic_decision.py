"""ar or ary-Arab: the decision on Arabic-script evidence, thin evidence, and what routing sees."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.acks.texts import languages_for
from normalizer.contract import Channel, ComplaintMessage, Customer, Evidence
from normalizer.deadlines import compute_deadlines
from normalizer.langid import detect
from normalizer.langid.arabic import AR, ARY, ArabicEvidence, decide
from normalizer.language import detect_text_language
from normalizer.reference import new_reference


def evidence(darija: float = 0.0, msa: float = 0.0, unknown: int = 0) -> ArabicEvidence:
    return ArabicEvidence(darija=darija, msa=msa, foreign_words=0, words=5, unknown_words=unknown)


def test_no_evidence_is_arabic_at_one_half_with_nothing_beside_it() -> None:
    answer = decide(evidence())
    assert (answer.tag, answer.confidence, answer.secondary) == (AR, 0.5, ())


def test_one_clear_darija_form_makes_darija() -> None:
    assert decide(evidence(darija=1.5)).tag == ARY


def test_a_weak_darija_form_alone_is_arabic_with_darija_named_beside_it() -> None:
    answer = decide(evidence(darija=0.75))
    assert answer.tag == AR
    assert [tag for tag, _ in answer.secondary] == [ARY]
    assert 0.5 < answer.confidence < 0.6


def test_thin_confidence_falls_from_0_6_to_0_51_as_darija_leads() -> None:
    barely, clearly = decide(evidence(darija=0.5, msa=0.4)), decide(evidence(darija=0.9))
    assert barely.tag == clearly.tag == AR
    assert 0.51 <= clearly.confidence < barely.confidence <= 0.6
    assert clearly.secondary == ((ARY, round(1 - clearly.confidence, 3)),)


def test_one_unknown_word_leaves_arabic_the_more_likely_label() -> None:
    answer = decide(evidence(unknown=1))
    assert (answer.tag, answer.secondary) == (AR, ())
    assert answer.confidence >= 0.5


def test_words_unknown_to_msa_never_make_darija_on_their_own() -> None:
    answer = decide(evidence(unknown=20))
    assert answer.tag == AR
    assert [tag for tag, _ in answer.secondary] == [ARY]


def test_msa_markers_outweigh_the_dialect_hint() -> None:
    answer = decide(evidence(msa=2.0, unknown=2))
    assert (answer.tag, answer.secondary) == (AR, ())


def test_darija_with_a_formal_phrase_names_arabic_as_secondary() -> None:
    answer = decide(evidence(darija=4.0, msa=1.5))
    assert answer.tag == ARY
    assert [tag for tag, _ in answer.secondary] == [AR]


@pytest.mark.parametrize(
    "text",
    [
        "كنتسنى الفلوس من سيمانة و ماوصلونيش",
        "صيفطت ليه الفلوس و ما خلصوش",
        "تايقولو ليا غادي يتحل المشكل",
        "واش نقدر نخلص فالوكالة؟",
    ],
)
def test_darija_sentences_built_on_unlisted_verbs(text: str) -> None:
    assert detect(text).tag == ARY


@pytest.mark.parametrize(
    "text",
    [
        "لم يصل المبلغ الذي أرسلته إلى والدتي.",
        "أرجو إعادة تفعيل بطاقتي في أقرب وقت.",
        "السلام عليكم، لم أتوصل بالحوالة حتى الآن.",
        "تطبق على العميل الشروط المذكورة فيما يليه.",
        "وقد تواصلت الشركة مع أهاليهم في المدينة.",
    ],
)
def test_formal_arabic_stays_arabic(text: str) -> None:
    assert detect(text).tag == AR


THIN = "الدفع فالوكالة"


def test_thin_evidence_is_answered_arabic_with_darija_secondary() -> None:
    guess = detect(THIN)
    assert guess.tag == AR
    assert [item.tag for item in guess.secondary] == [ARY]
    assert guess.confidence < 0.6


def test_the_message_language_carries_both_tags() -> None:
    language = detect_text_language(THIN)
    assert language.tag == AR
    assert [item.tag for item in language.secondary] == [ARY]


def test_the_acknowledgement_reads_a_thin_call_like_darija() -> None:
    received = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    deadlines = compute_deadlines(received)
    message = ComplaintMessage.model_validate(
        {
            "id": "0b8f6a52-3f0e-4a53-9a1e-5d7b8c9d0e1f",
            "reference": new_reference(),
            "channel": Channel.EMAIL,
            "received_at": received,
            "ack_due_at": deadlines.ack_due_at,
            "answer_due_at": deadlines.answer_due_at,
            "processed_at": received,
            "language": detect_text_language(THIN),
            "customer": Customer(name="Fatima", phone="+212661234567"),
            "body": THIN,
            "evidence": Evidence(
                stored_at="blob:sha256:" + "a" * 64,
                sha256="a" * 64,
                size=10,
                content_type="message/rfc822",
                message_id="<x@example.ma>",
            ),
        }
    )
    assert languages_for(message) == languages_for(
        message.model_copy(update={"language": detect_text_language("واش كاين شي حل؟")})
    )
