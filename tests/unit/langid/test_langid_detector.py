"""The language step's answers on sentences written for these tests."""

from __future__ import annotations

import pytest

from normalizer.langid import LanguageGuess, SecondaryLanguage, detect

MAIN_LABELS = [
    ("fr", "Bonjour, mon virement n'est toujours pas arrivé chez ma mère."),
    ("fr", "Merci de débloquer ma carte."),
    ("en", "I paid the bill twice and nobody refunded me."),
    ("en", "Thanks for your help."),
    ("es", "Mi hermano no ha recibido el dinero que le mandé."),
    ("es", "Gracias por la ayuda."),
    ("ar", "لم يصل المبلغ الذي أرسلته إلى والدتي."),
    ("ar", "أرجو إعادة تفعيل بطاقتي في أقرب وقت."),
    ("ary-Arab", "الفلوس اللي صيفطت لماما ماوصلوش حتى لدابا."),
    ("ary-Arab", "واش كاين شي حل للكارطة ديالي؟"),
    ("ary-Latn", "salam bghit n3ref 3lach flousi ma wslouch"),
    ("ary-Latn", "wach kayn chi 7al l lkarta dyali?"),
    ("ber-Latn", "Ur d-wwiḍen ara yedrimen i d-cegɛeɣ i yemma."),
    ("ber-Latn", "Acimi ur tessawaleḍ ara?"),
    ("zgh-Tfng", "ⵓⵔ ⴷ ⵍⴽⵉⵎⵏ ⵉⴷⵔⵉⵎⵏ ⵉ ⵜⵢⵢⵉ ⵢⵉⵎⵎⴰ."),
    ("zgh-Tfng", "ⴰⵣⵓⵍ"),
]


@pytest.mark.parametrize(("expected", "text"), MAIN_LABELS)
def test_each_label_is_recognised(expected: str, text: str) -> None:
    assert detect(text).tag == expected


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("de", "Ich habe Geld an meine Schwester geschickt, aber es ist nicht angekommen."),
        ("tr", "Kartımı kaybettim, yardım edin lütfen."),
        (
            "ru",
            "Здравствуйте, я отправил деньги своей матери неделю назад, "
            "но она их до сих пор не получила.",
        ),
    ],
)
def test_other_languages_pass_through_as_langdetect_codes(expected: str, text: str) -> None:
    guess = detect(text)
    assert guess.tag == expected
    assert guess.method == "langdetect"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "12345",
        "+212 520 020 915",
        "https://www.cashplus.ma/reclamations",
        "contact@cashplus.ma",
        "CP-7K4M-9QXT",
        "1500 DH",
        "?!...",
        "٠٥٢٠٠٢٠٩١٥",
    ],
)
def test_nothing_to_go_on_is_und(text: str) -> None:
    guess = detect(text)
    assert guess.tag == "und"
    assert guess.confidence == 0.0


@pytest.mark.parametrize("bad", [None, 42, b"bytes", "\x00\ud800"])
def test_never_raises(bad: object) -> None:
    guess = detect(bad)  # type: ignore[arg-type]
    assert isinstance(guess, LanguageGuess)


def test_noise_does_not_change_the_answer() -> None:
    noisy = (
        "bghit n3ref 3lach flousi ma wslouch https://cashplus.ma/x?id=3 "
        "contact@cashplus.ma 0661234567 1500dh CP-7K4M-9QXT"
    )
    assert detect(noisy).tag == "ary-Latn"


def test_arabic_with_diacritics_and_tatweel_matches_plain() -> None:
    plain = detect("أريد أن أعرف لماذا لم يصل المال")
    marked = detect("أُرِيدُ أَنْ أَعْـــرِفَ لِمَاذَا لَمْ يَصِلِ المَـالُ")
    assert (plain.tag, marked.tag) == ("ar", "ar")


def test_darija_with_arabic_indic_digits_and_tatweel() -> None:
    assert detect("بغيـــت نعرف علاش ماوصلونيش ٢٠٠ درهم").tag == "ary-Arab"


def test_french_darija_code_switching_reports_both() -> None:
    guess = detect("la carte dyali tblokat")
    assert guess.tag == "ary-Latn"
    assert [s.tag for s in guess.secondary] == ["fr"]


def test_darija_in_arabic_script_is_the_frame_of_french_insertions() -> None:
    guess = detect("سلام، بغيت نعرف علاش la carte ma khdamach")
    assert guess.tag == "ary-Arab"
    assert "fr" in [s.tag for s in guess.secondary]


def test_monolingual_text_has_no_secondary_language() -> None:
    assert detect("Ma carte est bloquée depuis lundi, merci de m'aider.").secondary == ()


@pytest.mark.parametrize(("expected", "text"), [("fr", "merci"), ("es", "hola"), ("en", "hello")])
def test_single_words(expected: str, text: str) -> None:
    assert detect(text).tag == expected


def test_arabizi_digits_inside_words_are_kept_but_numbers_dropped() -> None:
    guess = detect("3afak 7ta l 2025 ma tsaliwch 9bel")
    assert guess.tag == "ary-Latn"


def test_as_dict_has_the_contract_shape() -> None:
    guess = LanguageGuess("ary-Latn", 0.8, "lexicon", (SecondaryLanguage("fr", 0.25),))
    assert guess.as_dict() == {
        "tag": "ary-Latn",
        "confidence": 0.8,
        "method": "lexicon",
        "secondary": [{"tag": "fr", "confidence": 0.25}],
    }


def test_confidence_is_between_zero_and_one() -> None:
    for _, text in MAIN_LABELS:
        guess = detect(text)
        assert 0.0 <= guess.confidence <= 1.0
        assert all(0.0 < s.confidence <= 1.0 for s in guess.secondary)


def test_same_text_same_answer_within_a_process() -> None:
    text = "Hola, el dinero no llegó"
    assert len({detect(text) for _ in range(5)}) == 1
