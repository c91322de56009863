"""Abuse guards of the public form: CSRF tokens, the honeypot, client keys.

browser GET -> token in a hidden field + nonce in a cookie -> browser POST ->
**check here** before anything is parsed or stored.

CSRF: a double-submit token. The cookie holds a random nonce per browser;
the hidden field holds ``issued.nonce.mac`` where ``mac`` is an HMAC of
``issued.nonce`` under the gateway's secret. A POST is accepted only if the
MAC is right, the token is younger than ``max_age`` and its nonce is the
cookie's: another site can make a browser post, but can neither read our
cookie nor forge a token for it. The nonce is also what makes a reloaded or
double-clicked submission the same complaint (dedup key).

The secret is ``INTAKE_SESSION_SECRET``; when empty, a random one per
process, so with several web instances behind a load balancer it must be
set (otherwise a form shown by one instance fails on another, and the
customer is asked to send again).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "cp_form"
FIELD = "csrf_token"
# Bots fill every field; people never see this one (hidden by CSS, skipped by
# keyboard and screen readers). A name browsers do not autofill.
HONEYPOT = "contact_me_by_fax_only"
# The proof of work a browser solves for its form token when its address is
# over the per-address limits (a carrier NAT): see ``work_done``.
POW_FIELD = "pow"


def work_done(token: str, answer: str, bits: int) -> bool:
    """Whether ``sha256("<token>:<answer>")`` starts with ``bits`` zero bits.

    The page's script (``static/form.js``) counts ``answer`` up from 0 until
    it finds one: about ``2**bits`` hashes, a second or two in a phone's
    browser at 16 bits, for each form token; checking it is one hash. A
    token's proof buys that token its own budget past the address limits
    (``routes``), so a bot behind the same address pays the work again for
    every token it wants.
    """
    if bits <= 0 or not answer or len(answer) > 20 or not answer.isdigit():
        return False
    digest = hashlib.sha256(f"{token}:{answer}".encode()).digest()
    value = int.from_bytes(digest, "big")
    return value >> (256 - bits) == 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class FormGuard:
    secret: bytes
    max_age: int

    @classmethod
    def from_secret(cls, secret: str, max_age: int) -> FormGuard:
        key = secret.encode("utf-8") if secret else secrets.token_bytes(32)
        return cls(secret=key, max_age=max_age)

    @staticmethod
    def new_nonce() -> str:
        return _b64(secrets.token_bytes(18))

    def issue(self, nonce: str, now: float | None = None) -> str:
        issued = str(int(now if now is not None else time.time()))
        return f"{issued}.{nonce}.{self._mac(issued, nonce)}"

    def check(self, token: str, cookie_nonce: str | None, now: float | None = None) -> str | None:
        """The nonce when the token is valid for this cookie, else ``None``."""
        parts = token.split(".")
        if len(parts) != 3 or not cookie_nonce:
            return None
        issued, nonce, mac = parts
        if not issued.isdigit() or not hmac.compare_digest(mac, self._mac(issued, nonce)):
            return None
        age = (now if now is not None else time.time()) - int(issued)
        if age < -60 or age > self.max_age:  # a minute of clock skew between instances
            return None
        return nonce if hmac.compare_digest(nonce, cookie_nonce) else None

    def client_key(self, address: str, counter: str = "client") -> str:
        """A keyed hash of the client address: the rate limits count it, logs never see it.

        Each ``counter`` (every post, recorded complaints) gets its own hash,
        so the two limits count separately in one table.
        """
        label = f"webform-{counter}:".encode()
        return hmac.new(self.secret, label + address.encode(), "sha256").hexdigest()

    def _mac(self, issued: str, nonce: str) -> str:
        digest = hmac.new(self.secret, f"{issued}.{nonce}".encode(), hashlib.sha256).digest()
        return _b64(digest)
