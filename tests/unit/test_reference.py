import itertools
import threading

import pytest

from normalizer.reference import (
    ALPHABET,
    InvalidReference,
    find_references,
    is_valid_body,
    new_reference,
    parse_reference,
)


def _body(reference: str) -> str:
    return reference.removeprefix("CP-").replace("-", "")


def test_alphabet_leaves_out_characters_people_confuse() -> None:
    assert not set("01OIL") & set(ALPHABET)
    assert len(ALPHABET) == 31


def test_new_reference_is_canonical_and_valid() -> None:
    reference = new_reference()
    assert parse_reference(reference) == reference
    assert len(reference) == len("CP-XXXX-XXXX")


def test_every_single_wrong_character_is_caught() -> None:
    for _ in range(50):
        body = _body(new_reference())
        for position, char in itertools.product(range(len(body)), ALPHABET):
            if char != body[position]:
                assert not is_valid_body(body[:position] + char + body[position + 1 :])


def test_every_swap_of_two_different_characters_is_caught() -> None:
    for _ in range(50):
        body = list(_body(new_reference()))
        for i, j in itertools.combinations(range(len(body)), 2):
            if body[i] != body[j]:
                swapped = body.copy()
                swapped[i], swapped[j] = swapped[j], swapped[i]
                assert not is_valid_body("".join(swapped))


def test_dictated_forms_are_accepted() -> None:
    reference = new_reference()
    body = _body(reference)
    assert parse_reference(f"cp {body[:4].lower()} {body[4:].lower()}") == reference
    assert parse_reference(f"CP{body}") == reference


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("XX-2345-6789", "starts with CP"),
        ("CP-2345-678", "8 characters"),
        ("CP-O345-6789", "not used"),
    ],
)
def test_malformed_references_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        parse_reference(text)


def test_wrong_check_character_is_refused() -> None:
    body = _body(new_reference())
    wrong = ALPHABET[(ALPHABET.index(body[-1]) + 1) % len(ALPHABET)]
    with pytest.raises(InvalidReference, match="check character"):
        parse_reference(f"CP-{body[:4]}-{body[4:7]}{wrong}")


def test_find_references_in_free_text_keeps_only_valid_ones() -> None:
    good = new_reference()
    body = _body(good)
    broken = f"CP-{body[:4]}-{body[4:7]}{'2' if body[7] != '2' else '3'}"
    text = f"Suite à ma réclamation {good.lower()} (et non {broken}), rien. Re: {good}"
    assert find_references(text) == [good]


def test_references_drawn_concurrently_are_well_formed() -> None:
    drawn: list[str] = []

    def draw() -> None:
        drawn.extend(new_reference() for _ in range(200))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(drawn) == 800
    assert all(parse_reference(item) == item for item in drawn)
