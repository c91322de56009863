"""DKIM keys, signatures and a DNS that answers from a dict: mail authentication without a network.

A key is made with ``openssl`` once per test session; ``sign`` prepends a
real DKIM-Signature (dkimpy); ``dns_answering`` is the ``dnsfunc`` dkimpy
calls for ``<selector>._domainkey.<domain>.``, answering only what the test put in it.
"""

from __future__ import annotations

import base64
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dkim

SELECTOR = "intake-test"


@dataclass(frozen=True)
class DkimKey:
    private_pem: bytes
    public_der: bytes

    @property
    def record(self) -> bytes:
        """The TXT record publishing this key."""
        return b"v=DKIM1; k=rsa; p=" + base64.b64encode(self.public_der)


@cache
def dkim_key(name: str = "default") -> DkimKey:
    """An RSA key (2048 bits) made for this test session; ``name`` makes another one."""
    with tempfile.TemporaryDirectory(prefix=f"dkim-{name}-") as folder:
        private = Path(folder) / "key.pem"
        subprocess.run(
            ["openssl", "genrsa", "-traditional", "-out", str(private), "2048"],
            check=True,
            capture_output=True,
        )
        public = subprocess.run(
            ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        return DkimKey(private.read_bytes(), public)


def sign(raw: bytes, domain: str, key: DkimKey | None = None, selector: str = SELECTOR) -> bytes:
    """``raw`` with a DKIM-Signature of ``domain`` on top (From, To, Subject, Date, Message-ID)."""
    signature = dkim.sign(
        raw,
        selector.encode(),
        domain.encode(),
        (key or dkim_key()).private_pem,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return signature + raw


def key_name(domain: str, selector: str = SELECTOR) -> str:
    return f"{selector}._domainkey.{domain}."


def dns_answering(records: Mapping[str, bytes]) -> Callable[..., bytes | None]:
    """A dkimpy ``dnsfunc``: the record put in for a name, None (no such name) otherwise."""

    def lookup(name: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = name.decode() if isinstance(name, bytes) else name
        return records.get(text.lower())

    return lookup


def dns_down(name: bytes | str, timeout: float = 5.0) -> bytes | None:
    """A resolver that never answers."""
    raise TimeoutError(f"no answer for {name!r} within {timeout} s")
