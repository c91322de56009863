"""The e-mail policy the normalizer parses with: ``policy.default``, remembering parsed headers.

``email.policy.default`` parses a header field again each time it is read:
walking one mail reads ``Content-Type`` a dozen times (the content type, its
main type, a parameter, the charset …), which made header parsing the largest
share of the intake's CPU per mail. Header objects are immutable strings, so
the same (name, value) can share one parsed object; only short values are
remembered, so a hostile mail's huge header costs what it did before and no
memory beyond it.
"""

from __future__ import annotations

from email.policy import EmailPolicy
from functools import lru_cache
from typing import Any

# Longer values are parsed every time: rare, and not worth keeping.
_CACHED_VALUE_CHARS = 1024


class CachingPolicy(EmailPolicy):
    """``policy.default`` whose parsed header objects are reused for repeated reads."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if hasattr(value, "name") or len(value) > _CACHED_VALUE_CHARS:
            return super().header_fetch_parse(name, value)
        return _parsed(self, name, value)


@lru_cache(maxsize=2048)
def _parsed(owner: CachingPolicy, name: str, value: str) -> Any:
    return EmailPolicy.header_fetch_parse(owner, name, value)


POLICY = CachingPolicy()
