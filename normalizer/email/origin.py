"""Who a complaint comes from: the customer, or an authority forwarding it.

Raw mail -> parse -> **origin** -> complaint ``origin`` field.

Under circular N°10/W/16 a complaint may reach Cash Plus through Bank
Al-Maghrib, or come back through the CMMB mediation centre. Both write from
their own domains, so the sender address decides. The rules are data (an
origin mapped to domains and full addresses) so operators can add a new
forwarding address by configuration. A domain rule also matches its
subdomains (``bkam.ma`` matches ``reclamations.bkam.ma``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from normalizer.email.headers import idn_to_unicode

CUSTOMER = "customer"
BANK_AL_MAGHRIB = "bank_al_maghrib"
CMMB = "cmmb"

DEFAULT_ORIGIN_RULES: Mapping[str, Sequence[str]] = {
    BANK_AL_MAGHRIB: ("bkam.ma",),
    CMMB: ("cmmb.ma",),
}


def classify_origin(address: str | None, rules: Mapping[str, Sequence[str]] | None = None) -> str:
    """``"customer"`` or the origin whose domain or address list matches ``address``.

    An entry with an ``@`` matches that exact address (case-insensitive);
    any other entry is a domain. Unknown or missing addresses are customers.
    """
    if not address or "@" not in address:
        return CUSTOMER
    local, _, domain = address.strip().strip("<>").rpartition("@")
    domain = idn_to_unicode(domain)
    full = f"{local.lower()}@{domain}"
    for origin, entries in (DEFAULT_ORIGIN_RULES if rules is None else rules).items():
        for entry in entries:
            if _matches(entry.strip().lower(), full, domain):
                return origin
    return CUSTOMER


def _matches(entry: str, address: str, domain: str) -> bool:
    if "@" in entry:
        local, _, entry_domain = entry.rpartition("@")
        return address == f"{local}@{idn_to_unicode(entry_domain)}"
    entry_domain = idn_to_unicode(entry.lstrip("@."))
    return domain == entry_domain or domain.endswith("." + entry_domain)
