"""Password hashing with scrypt (memory-hard KDF, in the standard library).

Stored form: ``scrypt$N$r$p$salt$hash`` (base64), so the cost can be raised
later and old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from normalizer.errors import InputRejected

N, R, P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
_LENGTH = 32
MIN_LENGTH = 10


class WeakPassword(InputRejected, ValueError):
    pass


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password too short: at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=N, r=R, p=P, maxmem=_MAXMEM, dklen=_LENGTH
    )
    return "$".join(("scrypt", str(N), str(R), str(P), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=_MAXMEM,
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


# Compared against when the user does not exist, so timing does not reveal names.
DUMMY_HASH = (
    "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
