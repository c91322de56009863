"""Per-address rate limit of the public form, kept in the store.

browser POST -> guard (CSRF) -> **rate limit** -> parse, validate, hand off.

Each attempt is a row (``webform_attempts``) under a keyed hash of the
client address; the limit is a count over the last hour. Kept in the
database rather than in process memory so that several web instances behind
a load balancer agree, and a restart does not reset it. Old rows are
deleted as new ones come in, so the table stays small.

Behind a proxy the client address is the one uvicorn takes from
``X-Forwarded-For`` for proxies listed in ``FORWARDED_ALLOW_IPS``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select

from gateway.store.customer_facing import WebformAttemptRow
from gateway.store.db import writing
from gateway.store.intake import guarded

WINDOW = timedelta(hours=1)


class RateLimiter:
    def __init__(self, engine: Engine, per_hour: int) -> None:
        self.engine = engine
        self.per_hour = per_hour

    def allow(self, client_key: str, now: datetime | None = None) -> bool:
        """Count this attempt and say whether it is within the limit.

        An attempt over the limit is not counted, so someone who waits an
        hour gets in again however often they were refused meanwhile.
        """
        moment = now or datetime.now(UTC)
        return guarded(lambda: self._allow(client_key, moment))

    def _allow(self, client_key: str, now: datetime) -> bool:
        since = now - WINDOW
        with writing(self.engine) as session:
            session.execute(delete(WebformAttemptRow).where(WebformAttemptRow.created_at < since))
            used = session.scalar(
                select(func.count())
                .select_from(WebformAttemptRow)
                .where(
                    WebformAttemptRow.client_key == client_key,
                    WebformAttemptRow.created_at >= since,
                )
            )
            if int(used or 0) >= self.per_hour:
                return False
            session.add(WebformAttemptRow(client_key=client_key, created_at=now))
        return True
