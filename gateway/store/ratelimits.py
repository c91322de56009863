"""Per-address rate limits of the public form, kept in the store.

browser POST -> guard (CSRF) -> **flood guard** -> validate -> **complaint
limit** -> hand off -> **count the complaint**.

Two counters per client address, each a ``RateLimiter`` over its own keyed
hash of the address: every post with a valid form token (a generous flood
guard, ``INTAKE_WEBFORM_MAX_POSTS_PER_HOUR``), and complaints actually
recorded (``INTAKE_WEBFORM_MAX_PER_HOUR``). A customer who makes typos is
sent back to the form, never locked out by the complaint limit.

Each counted event is a row (``webform_attempts``); a limit is a count over
the last hour. Kept in the
database rather than in process memory so that several web instances behind
a load balancer agree, and a restart does not reset it. Old rows are
deleted as new ones come in, so the table stays small.

Behind a proxy the client address is the one uvicorn takes from
``X-Forwarded-For`` for proxies listed in ``FORWARDED_ALLOW_IPS``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select

from gateway.store.db import writing
from gateway.store.intake import guarded
from gateway.store.tables import WebformAttemptRow

WINDOW = timedelta(hours=1)


class RateLimiter:
    def __init__(self, engine: Engine, per_hour: int) -> None:
        self.engine = engine
        self.per_hour = per_hour

    def allow(self, client_key: str, now: datetime | None = None) -> bool:
        """Count this attempt and say whether it is within the limit (the flood guard).

        An attempt over the limit is not counted, so someone who waits an
        hour gets in again however often they were refused meanwhile.
        """
        moment = now or datetime.now(UTC)
        return guarded(lambda: self._allow(client_key, moment, count=True))

    def within(self, client_key: str, now: datetime | None = None) -> bool:
        """Whether one more event fits, without counting it (a complaint not yet recorded).

        The complaint is counted by ``record`` once it is committed, so a
        refused or failed submission never uses up the customer's limit.
        Two submissions at the same instant may both pass: the flood guard
        bounds that.
        """
        moment = now or datetime.now(UTC)
        return guarded(lambda: self._allow(client_key, moment, count=False))

    def record(self, client_key: str, now: datetime | None = None) -> None:
        """Count one event (a complaint just recorded)."""
        moment = now or datetime.now(UTC)
        guarded(lambda: self._record(client_key, moment))

    def _allow(self, client_key: str, now: datetime, *, count: bool) -> bool:
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
            if count:
                session.add(WebformAttemptRow(client_key=client_key, created_at=now))
        return True

    def _record(self, client_key: str, now: datetime) -> None:
        with writing(self.engine) as session:
            session.add(WebformAttemptRow(client_key=client_key, created_at=now))
