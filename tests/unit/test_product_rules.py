"""The product rules: one everyday word is not enough; a specific term, or two cues, are.

Sentences written for these tests from the rules' own words (never from
evaluation data).
"""

from __future__ import annotations

import json

import pytest

from normalizer.product import MIN_CONFIDENCE, RULES, detect_product

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text",
    [
        "Ma carte ne marche pas",
        "Problème avec l'application",
        "Le transfert n'est pas arrivé",
        "J'ai un souci avec ma facture",
        "بطاقة ديالي ما خدامةش",
        "My card was refused",
        "Je suis allé à l'agence hier",
        # The same cue told three times is still one cue.
        "carte, ma carte, la carte, card",
    ],
)
def test_one_generic_word_names_no_product(text: str) -> None:
    assert detect_product(text) is None


@pytest.mark.parametrize(
    ("text", "code", "matched"),
    [
        ("Retrait impossible au GAB", "card", ("gab",)),
        ("Mon MTCN ne fonctionne pas", "money_transfer", ("mtcn",)),
        ("Paiement Lydec non pris en compte", "bill_payment", ("lydec",)),
        ("Rien sur mon e-wallet", "wallet", ("e-wallet",)),
    ],
)
def test_one_product_specific_term_names_the_product(
    text: str, code: str, matched: tuple[str, ...]
) -> None:
    guess = detect_product(text)

    assert guess is not None
    assert (guess.code, guess.matched) == (code, matched)
    assert guess.confidence == 0.75


def test_two_independent_everyday_cues_name_the_product() -> None:
    guess = detect_product("Le solde de mon portefeuille est faux")

    assert guess is not None
    assert guess.code == "wallet"
    assert set(guess.matched) == {"solde", "portefeuille"}
    assert guess.confidence == 0.75


def test_a_generic_word_inside_a_specific_term_is_not_a_second_cue() -> None:
    """ "code de transfert" holds "transfert": one term, strength 2, not 3."""
    guess = detect_product("J'ai perdu le code de transfert")

    assert guess is not None
    assert guess.code == "money_transfer"
    assert guess.matched == ("code de transfert",)
    assert guess.confidence == 0.75


def test_a_specific_term_outweighs_a_generic_word_of_another_product() -> None:
    guess = detect_product("Le transfert Western Union sur ma carte")

    assert guess is not None
    assert guess.code == "money_transfer"
    # strength 3 (a term and a cue) against 1: 0.9 * (3 - 1) / 3
    assert guess.confidence == 0.6 >= MIN_CONFIDENCE


def test_two_products_as_strong_name_none() -> None:
    assert detect_product("Le GAB a gardé la carte et le code de transfert") is None


def test_every_word_is_either_specific_or_in_one_group() -> None:
    products = json.loads(RULES.read_text("utf-8"))["products"]
    for code, rules in products.items():
        words = rules["specific"] + [word for group in rules["generic"] for word in group]
        assert len(words) == len(set(words)), code
        assert all(isinstance(group, list) and group for group in rules["generic"]), code
