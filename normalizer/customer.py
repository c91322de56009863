"""Pseudonymous customer keys: one customer recognised across channels, named by no one.

A complaint's contact points (its phone in E.164, its e-mail in lower case)
become keys with an HMAC-SHA256 under the deployment's secret
(``INTAKE_CUSTOMER_KEY_SECRET``): the same secret gives the same key to the
same phone or address whichever channel it came by; a reader without the
secret cannot tell whose it is, nor try every Moroccan number against it.

normalizer (contact points in E.164 / lower case) -> **contact_keys** ->
the store (``gateway.store.customers``) records them with the complaint and
decides ``customer.key`` (the key the customer already has, else the key of
this complaint's first contact point) and ``customer.related``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from normalizer.contact import InvalidContact, to_e164
from normalizer.contract import CUSTOMER_KEY_PREFIX, Customer, Origin

# 160 bits of the HMAC, in 32 base32 characters: no collision among any
# number of customers this service will ever see.
_KEY_BYTES = 20


def phone_point(raw: str) -> str | None:
    """``tel:+212612345678`` for any way a number is written, None if it is no number."""
    try:
        return f"tel:{to_e164(raw)}"
    except InvalidContact:
        return None


def email_point(raw: str) -> str | None:
    """``mailto:`` and the address in lower case (mailboxes are not case-sensitive in practice)."""
    text = raw.strip().lower()
    return f"mailto:{text}" if "@" in text else None


def contact_points(customer: Customer) -> list[str]:
    """The customer's contact points, the phone first (it names the customer's key)."""
    points = [
        point
        for point in (
            phone_point(customer.phone) if customer.phone else None,
            email_point(customer.email) if customer.email else None,
        )
        if point is not None
    ]
    return points


def point_key(point: str, secret: bytes) -> str:
    """The key of one contact point: ``cus_`` and a truncated HMAC-SHA256, base32."""
    if not secret:
        raise ValueError("the customer key secret is empty")
    digest = hmac.new(secret, point.encode("utf-8"), hashlib.sha256).digest()[:_KEY_BYTES]
    return CUSTOMER_KEY_PREFIX + base64.b32encode(digest).decode("ascii").lower()


def contact_keys(customer: Customer, secret: bytes, origin: Origin = Origin.CUSTOMER) -> list[str]:
    """The keys of the customer's contact points, the phone's first; empty without any.

    Empty too for a complaint forwarded by the regulator or the mediator: its
    contact is their own mailbox, and keying it would make all their forwards
    one "customer" listing the others' references.
    """
    if origin is not Origin.CUSTOMER:
        return []
    return [point_key(point, secret) for point in contact_points(customer)]
