"""Complaint references that a customer can read over the phone.

A reference looks like ``CP-7K4M-9QXT``: the fixed prefix ``CP``, seven random
characters and one check character, grouped by four. The alphabet leaves out
the characters people confuse when reading aloud or copying by hand (0/O,
1/I/L), which leaves 31 symbols. 31 is prime, so a weighted sum modulo 31
with distinct non-zero weights catches every single wrong character and
every swap of two characters, adjacent or not (ISO 7064 style, one pure
check character).

Uniqueness is not left to chance: the store puts a unique constraint on the
reference column and draws again on a collision.
"""

from __future__ import annotations

import re
import secrets

from normalizer.errors import InputRejected

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PREFIX = "CP"
RANDOM_LENGTH = 7
_MODULUS = len(ALPHABET)
_VALUE = {char: index for index, char in enumerate(ALPHABET)}

# Separators and case are forgiven on input; the canonical form is upper case
# with dashes. Letters people may say or type for an excluded symbol are not
# guessed: a reference with 0, O, 1, I or L in it is simply not one of ours.
_LOOSE = re.compile(
    r"\bCP[\s\-_./]*((?:[2-9A-HJKMNP-Z][\s\-]?){7}[2-9A-HJKMNP-Z])\b", re.IGNORECASE
)


class InvalidReference(InputRejected, ValueError):
    """The text is not a well-formed reference, or its check character is wrong."""


def _check_character(payload: str) -> str:
    # Weights 1..n for the payload and n+1 for the check character itself;
    # the check is chosen so that the full weighted sum is 0 modulo 31.
    total = sum((position + 1) * _VALUE[char] for position, char in enumerate(payload))
    weight = len(payload) + 1
    # Solve total + weight * c == 0 (mod 31) for c.
    inverse = pow(weight, -1, _MODULUS)
    return ALPHABET[(-total * inverse) % _MODULUS]


def is_valid_body(body: str) -> bool:
    """True when ``body`` (the eight characters after ``CP-``) carries a valid check."""
    if len(body) != RANDOM_LENGTH + 1 or any(char not in _VALUE for char in body):
        return False
    total = sum((position + 1) * _VALUE[char] for position, char in enumerate(body))
    return total % _MODULUS == 0


def format_reference(body: str) -> str:
    """Canonical display form: ``CP-XXXX-XXXX``."""
    return f"{PREFIX}-{body[:4]}-{body[4:]}"


def new_reference() -> str:
    """Draw a fresh random reference (uniqueness is enforced by the store)."""
    payload = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return format_reference(payload + _check_character(payload))


def parse_reference(text: str) -> str:
    """Normalize a reference typed or dictated by a person, or raise ``InvalidReference``.

    Accepts any case and separators (``cp 7k4m 9qxt``, ``CP7K4M9QXT``).
    """
    compact = re.sub(r"[\s\-_./]", "", text.strip()).upper()
    if not compact.startswith(PREFIX):
        raise InvalidReference(f"a reference starts with {PREFIX}-")
    body = compact[len(PREFIX) :]
    if len(body) != RANDOM_LENGTH + 1:
        raise InvalidReference(f"a reference has {RANDOM_LENGTH + 1} characters after {PREFIX}-")
    bad = sorted({char for char in body if char not in _VALUE})
    if bad:
        raise InvalidReference(f"characters not used in references: {''.join(bad)}")
    if not is_valid_body(body):
        raise InvalidReference("check character does not match: a character is wrong or swapped")
    return format_reference(body)


def find_references(text: str) -> list[str]:
    """Every valid reference quoted in free text, canonical, in order, without repeats."""
    found: list[str] = []
    for match in _LOOSE.finditer(text):
        body = re.sub(r"[\s\-]", "", match.group(1)).upper()
        if is_valid_body(body):
            reference = format_reference(body)
            if reference not in found:
                found.append(reference)
    return found
