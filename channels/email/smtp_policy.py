"""Who may deliver what to the SMTP receiver: recipients, client networks, TLS.

Flow: sending MTA -> **channels.email.smtp_policy** (read once from the
``INTAKE_SMTP_*`` settings) -> the checks in ``channels.email.smtp``'s MAIL and RCPT
hooks and the STARTTLS context of every session. A setting that cannot be
used raises ``SmtpConfigError`` naming it, at start-up, never per session.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass

from config.settings import ConfigError, Settings
from normalizer.email.dsn import verp_token


class SmtpConfigError(ConfigError, ValueError):
    """An ``INTAKE_SMTP_*`` setting cannot be used; the message names it."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class SmtpPolicy:
    """Accepted recipients and allowed client networks, read once from the settings."""

    addresses: frozenset[str]
    domains: frozenset[str]
    networks: tuple[Network, ...]  # empty: anyone may deliver (a public MX)
    # INTAKE_ACK_BOUNCE_ADDRESS: it and its VERP addresses (bounces+<id>@...) are accepted.
    bounce_address: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpPolicy:
        entries = [item.strip() for item in settings.smtp_recipients.split(",") if item.strip()]
        return cls(
            addresses=frozenset(canonical_address(item) for item in entries if "@" in item),
            domains=frozenset(canonical_domain(item) for item in entries if "@" not in item),
            networks=parse_networks(settings.smtp_allowed_networks),
            bounce_address=settings.ack_bounce_address,
        )

    def accepts_recipient(self, address: str) -> bool:
        canonical = canonical_address(address)
        if canonical in self.addresses or canonical.rpartition("@")[2] in self.domains:
            return True
        return self._bounce(canonical)

    def _bounce(self, canonical: str) -> bool:
        """The return path of our acknowledgements, or one of its VERP addresses."""
        if not self.bounce_address:
            return False
        base = canonical_address(self.bounce_address)
        return canonical == base or verp_token(base, canonical) is not None

    def allows_peer(self, host: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)

    def vouches_for(self, host: str) -> bool:
        """Whether this peer may have written the ``Authentication-Results`` we read (S12).

        Only our own MX relaying: the allowed networks are set and the peer is
        within them. A public receiver (no networks) takes mail from anyone,
        who can write any header.
        """
        return bool(self.networks) and self.allows_peer(host)


def vouches_for_peer(settings: Settings, host: str) -> bool:
    """``SmtpPolicy.vouches_for`` with today's settings (a replay); unusable networks: no."""
    try:
        networks = parse_networks(settings.smtp_allowed_networks)
    except SmtpConfigError:
        return False
    return SmtpPolicy(frozenset(), frozenset(), networks).vouches_for(host)


def canonical_domain(domain: str) -> str:
    """Lower case, internationalized names in their ASCII (IDNA) form."""
    domain = domain.strip().rstrip(".").lower()
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def canonical_address(address: str) -> str:
    local, _at, domain = address.strip().rpartition("@")
    return f"{local.casefold()}@{canonical_domain(domain)}"


def parse_networks(value: str) -> tuple[Network, ...]:
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise SmtpConfigError(
                f"INTAKE_SMTP_ALLOWED_NETWORKS: not a network: {item!r}"
            ) from None
    return tuple(networks)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A server context when a certificate is configured (STARTTLS is then offered)."""
    if not settings.smtp_tls_cert:
        if settings.smtp_tls_key:
            raise SmtpConfigError("INTAKE_SMTP_TLS_KEY is set but INTAKE_SMTP_TLS_CERT is not")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.smtp_tls_cert, settings.smtp_tls_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise SmtpConfigError(
            f"INTAKE_SMTP_TLS_CERT/INTAKE_SMTP_TLS_KEY: cannot load: {exc}"
        ) from None
    return context
