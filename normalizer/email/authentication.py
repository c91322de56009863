"""Whether a mail really comes from the domain in its From header (S12).

Raw mail -> parse -> **authentication** -> origin (bank_al_maghrib, cmmb only
when this says ``pass``) and ``details["authentication"]`` of the complaint.

Two ways to ``pass``, tried in this order:

1. ``Authentication-Results`` (RFC 8601) written by our own MX or mailbox
   provider, and only when the caller says whoever handed us the mail may
   have written them (``trust_authentication_results``: not a public SMTP
   receiver's peer, which could be anyone). Only the topmost
   ``Authentication-Results`` header is read, and only when it bears an
   authserv-id in ``trusted_authserv_ids``: every header below it may have
   come with the mail, a forged one repeating our MX's id included (our MX
   must write its verdict in one header).
   ``dmarc=pass`` (its ``header.from`` the From domain) or ``dkim=pass`` with
   a ``header.d`` aligned with the From domain passes.
2. A DKIM signature the gateway verifies itself (``dkimpy``), whose ``d=`` is
   aligned with the From domain. The key is looked up in DNS with a timeout;
   a DNS failure (timeout, server failure) gives ``none``, never an error.

Alignment is DMARC's relaxed mode without a public-suffix list: the same
domain, or one a subdomain of the other.

``fail``: a trusted header reported a DKIM or DMARC failure, or a signature
aligned with From did not verify. ``none``: nothing to go by. A mail that
does not pass is a customer's, whatever its From says.

Pure apart from the DNS lookup, which the caller may replace (``dnsfunc``:
tests answer with a key they made, never the network).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from typing import Any, Literal

import authres
import dkim

log = logging.getLogger("intake.email")

Result = Literal["pass", "fail", "none"]
Method = Literal["dkim", "authentication-results"]
# (name, timeout) -> the TXT record, None when the name has none; raises on a DNS failure.
DnsFunc = Callable[..., bytes | None]

PASS: Result = "pass"  # noqa: S105 - a verdict, not a password
FAIL: Result = "fail"
NONE: Result = "none"
BY_HEADER: Method = "authentication-results"
BY_DKIM: Method = "dkim"
# Signatures verified per mail at most (each may cost a DNS lookup).
MAX_SIGNATURES = 3
_FAILED = {"fail", "permerror"}


@dataclass(frozen=True)
class Authentication:
    """The verdict: the exact shape of ``details["authentication"]`` (a contract with acks)."""

    result: Result = NONE
    method: Method | None = None
    domain: str | None = None

    def as_details(self) -> dict[str, Any]:
        return {"result": self.result, "method": self.method, "domain": self.domain}

    @property
    def passed(self) -> bool:
        return self.result == PASS


@dataclass(frozen=True)
class AuthPolicy:
    """What to believe: trusted authserv-ids, and whether to verify DKIM (with which DNS).

    ``trust_authentication_results`` is about the way the mail came: false
    when whoever handed it to us may have written the headers themselves (a
    public SMTP receiver's peer); ``Authentication-Results`` are then ignored
    whatever their authserv-id, and only DKIM verified here counts.
    """

    trusted_authserv_ids: frozenset[str] = frozenset()
    verify_dkim: bool = False
    dns_timeout: float = 5.0
    dnsfunc: DnsFunc | None = None  # None: DNS through dnspython
    trust_authentication_results: bool = True

    @classmethod
    def from_values(
        cls,
        trusted: str,
        *,
        verify_dkim: bool,
        dns_timeout: float,
        dnsfunc: DnsFunc | None = None,
        trust_authentication_results: bool = True,
    ) -> AuthPolicy:
        ids = frozenset(item.strip().lower() for item in trusted.split(",") if item.strip())
        return cls(ids, verify_dkim, dns_timeout, dnsfunc, trust_authentication_results)


class DnsFailure(Exception):
    """The key could not be looked up (timeout, server failure): no verdict."""


def authenticate(
    raw: bytes, message: Message, from_domain: str | None, policy: AuthPolicy
) -> Authentication:
    """The verdict for one mail whose From domain is ``from_domain`` (ASCII form).

    Never raises: whatever goes wrong (hostile headers included) leaves the
    mail unauthenticated (``none``), and the mail is read all the same.
    """
    try:
        return _authenticate(raw, message, from_domain, policy)
    except Exception as error:
        log.warning("mail authentication not decided: %s", type(error).__name__)
        return Authentication()


def _authenticate(
    raw: bytes, message: Message, from_domain: str | None, policy: AuthPolicy
) -> Authentication:
    if not from_domain:
        return Authentication()
    domain = from_domain.strip().rstrip(".").lower()
    by_header = (
        _from_headers(message, domain, policy.trusted_authserv_ids)
        if policy.trust_authentication_results
        else Authentication()
    )
    if by_header.passed:
        return by_header
    by_dkim = _verify_dkim(raw, domain, policy) if policy.verify_dkim else Authentication()
    if by_dkim.passed:
        return by_dkim
    return by_header if by_header.result == FAIL else by_dkim


def aligned(signer: str, from_domain: str) -> bool:
    """DMARC relaxed alignment, approximated without a public-suffix list."""
    signer = signer.strip().rstrip(".").lower()
    if not signer or "." not in signer:
        return False
    return (
        signer == from_domain
        or from_domain.endswith("." + signer)
        or signer.endswith("." + from_domain)
    )


# -- 1. Authentication-Results of a trusted authserv-id ----------------------------
def trusted_results(message: Message, trusted: frozenset[str]) -> list[Any]:
    """The results of the topmost ``Authentication-Results`` header, if a trusted id wrote it.

    Only that one header counts: our MX writes one header above everything it
    received, and anything below it, whatever its authserv-id, may have come
    with the mail (a forged header that repeats our MX's id included).
    """
    if not trusted:
        return []
    for name, value in message.items():
        if name.lower() != "authentication-results":
            continue  # above the topmost Authentication-Results (our MX's Received ...)
        try:
            header = authres.AuthenticationResultsHeader.parse_value(_unfold(value))
        except Exception:
            return []  # unreadable: cannot tell who wrote it
        authserv_id = str(header.authserv_id or "").strip().lower()
        return list(header.results) if authserv_id in trusted else []
    return []


def _from_headers(message: Message, domain: str, trusted: frozenset[str]) -> Authentication:
    failed = False
    for result in trusted_results(message, trusted):
        method = str(result.method or "").lower()
        outcome = str(result.result or "").lower()
        if method not in ("dkim", "dmarc"):
            continue
        if method == "dmarc":
            header_from = _property(result, "header", "from")
            signer = header_from.rpartition("@")[2] if header_from else domain
        else:
            signer = (
                _property(result, "header", "d")
                or _property(result, "header", "i").rpartition("@")[2]
            )
        if not aligned(signer, domain):
            continue
        if outcome == "pass":
            return Authentication(PASS, BY_HEADER, signer.lower().rstrip("."))
        failed = failed or outcome in _FAILED
    return Authentication(FAIL, BY_HEADER, None) if failed else Authentication()


def _property(result: Any, kind: str, name: str) -> str:
    for prop in getattr(result, "properties", None) or []:
        if str(prop.type).lower() == kind and str(prop.name).lower() == name:
            return str(prop.value or "")
    return ""


def _unfold(value: object) -> str:
    return " ".join(str(value).split())


# -- 2. DKIM verified here --------------------------------------------------------
def _verify_dkim(raw: bytes, domain: str, policy: AuthPolicy) -> Authentication:
    signatures = _aligned_signatures(raw, domain)
    if not signatures:
        return Authentication()
    lookups = _Lookups(policy)
    verdict = Authentication()
    try:
        verifier = dkim.DKIM(raw, timeout=policy.dns_timeout)
    except Exception:
        return verdict
    for index, signer in signatures[:MAX_SIGNATURES]:
        try:
            good = verifier.verify(idx=index, dnsfunc=lookups)
        except Exception as error:
            log.info(
                "DKIM signature %s of %s not verified: %s", index, signer, type(error).__name__
            )
            good = False
        if good:
            return Authentication(PASS, BY_DKIM, signer)
        if lookups.failed:
            lookups.failed = False
            continue  # no answer from DNS: not a verdict on this signature
        verdict = Authentication(FAIL, BY_DKIM, None)
    return verdict


def _aligned_signatures(raw: bytes, domain: str) -> list[tuple[int, str]]:
    """(index among the DKIM-Signature headers, d=) of those aligned with From."""
    try:
        headers, _body = dkim.rfc822_parse(_header_block(raw))
    except Exception:
        return []
    found: list[tuple[int, str]] = []
    signatures = [value for name, value in headers if name.lower() == b"dkim-signature"]
    for index, value in enumerate(signatures):
        try:
            fields = dkim.util.parse_tag_value(value)
            signer = fields[b"d"].decode("ascii").strip().lower()
        except Exception as error:
            log.info("unreadable DKIM-Signature header skipped: %s", type(error).__name__)
            continue
        if aligned(signer, domain):
            found.append((index, signer))
    return found


def _header_block(raw: bytes) -> bytes:
    """The message's header block alone (a copy of the head, not of the whole message)."""
    ends = [found for found in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if found >= 0]
    return raw[: min(ends) + 2] + b"\r\n" if ends else raw


class _Lookups:
    """dkimpy's ``dnsfunc``: the policy's (or dnspython), noting a DNS failure."""

    def __init__(self, policy: AuthPolicy) -> None:
        self.lookup: DnsFunc = policy.dnsfunc or dns_txt
        self.timeout = policy.dns_timeout
        self.failed = False

    def __call__(self, name: bytes | str, timeout: float = 5.0) -> bytes | None:
        try:
            return self.lookup(name, timeout=min(timeout, self.timeout))
        except Exception as error:
            self.failed = True
            log.info("DKIM key lookup failed: %s", type(error).__name__)
            raise dkim.DnsTimeoutError(type(error).__name__) from error


def dns_txt(name: bytes | str, timeout: float = 5.0) -> bytes | None:
    """The TXT record at ``name`` (None when the name or record does not exist).

    Raises ``DnsFailure`` when DNS gives no answer (timeout, server failure).
    """
    import dns.exception
    import dns.resolver

    text = name.decode("ascii") if isinstance(name, bytes) else name
    try:
        answer = dns.resolver.resolve(text, "TXT", lifetime=timeout, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as error:
        raise DnsFailure(type(error).__name__) from error
    for record in _records(answer):
        return record
    return None


def _records(answer: Any) -> Iterable[bytes]:
    for rrset in answer.response.answer:
        for item in rrset:
            strings = getattr(item, "strings", None)
            if strings is not None:
                yield b"".join(strings)
