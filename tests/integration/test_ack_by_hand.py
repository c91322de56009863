"""An acknowledgement made by hand, recorded by an operator on ``/ops/complaints/{reference}``.

SQLite and the machine's PostgreSQL; the app in-process, logged in as an
operator. The complaint's automatic acknowledgement was left to staff
(skipped, as the worker does for an unauthenticated e-mail sender).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.settings import load_settings
from gateway.lib.services import Services, build_services
from gateway.store.acks import SENT, SENT_KIND, event_key
from normalizer.contract import ComplaintMessage
from tests.peers.complaints import record
from tests.peers.staff import logged_in_client

pytestmark = pytest.mark.integration

PASSWORD = "accuse-2026-casablanca"


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Services]:
    changes: dict[str, object] = {}
    if request.param == "postgresql":
        changes["database_url"] = request.getfixturevalue("postgres_url")
    built = build_services(load_settings(data_dir=data_dir, **changes))
    try:
        yield built
    finally:
        built.close()


def left_to_staff(services: Services) -> ComplaintMessage:
    message = record(services.store).message
    services.store.acks.skip(message, "sender_not_authenticated")
    return message


def csrf(page: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    return token.group(1)


def test_an_operator_records_a_registered_letter_and_the_register_shows_it(
    services: Services,
) -> None:
    message = left_to_staff(services)
    client = logged_in_client(services, "karim", PASSWORD)
    page = client.get(f"/ops/complaints/{message.reference}").text
    assert 'id="ack-by-hand"' in page
    before = datetime.now(UTC)

    without_token = client.post(
        f"/ops/complaints/{message.reference}/acknowledged", data={"means": "call"}
    )
    answer = client.post(
        f"/ops/complaints/{message.reference}/acknowledged",
        data={"csrf_token": csrf(page), "means": "registered", "note": "RR 1234 5678 9MA"},
        follow_redirects=False,
    )

    assert without_token.status_code == 403
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("?notice=acknowledged#ack")
    ack = services.store.acks.get(message.id)
    assert ack is not None and ack.sent_at is not None
    assert (ack.status, ack.method) == (SENT, "registered")
    assert before <= ack.sent_at <= datetime.now(UTC)
    assert services.store.acks.event_recorded(event_key(message.id, SENT_KIND))
    (entry,) = [e for e in services.store.staff_audit.latest() if e.action == "ack_by_hand"]
    assert (entry.actor, entry.target) == ("karim", message.reference)
    assert entry.detail == "registered: RR 1234 5678 9MA"
    zone = services.settings.timezone
    month = message.received_at.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
    (row,) = services.store.register(zone).month(month).rows
    assert (row.acknowledged_at, row.ack_days, row.ack_late) == (ack.sent_at, 0, False)
    shown = client.get(answer.headers["location"]).text
    assert 'id="ack-sent"' in shown and 'id="ack-by-hand"' not in shown


def test_a_second_record_or_one_for_an_acknowledgement_not_left_to_staff_is_refused(
    services: Services,
) -> None:
    done = left_to_staff(services)
    automatic = record(services.store).message  # the worker has not decided yet: no row
    client = logged_in_client(services, "karim", PASSWORD)
    token = csrf(client.get(f"/ops/complaints/{done.reference}").text)
    first = client.post(
        f"/ops/complaints/{done.reference}/acknowledged",
        data={"csrf_token": token, "means": "call"},
        follow_redirects=False,
    )

    again = client.post(
        f"/ops/complaints/{done.reference}/acknowledged",
        data={"csrf_token": token, "means": "in_person"},
        follow_redirects=False,
    )
    other = client.post(
        f"/ops/complaints/{automatic.reference}/acknowledged",
        data={"csrf_token": token, "means": "call"},
        follow_redirects=False,
    )
    unknown_means = client.post(
        f"/ops/complaints/{automatic.reference}/acknowledged",
        data={"csrf_token": token, "means": "pigeon"},
        follow_redirects=False,
    )

    assert first.headers["location"].endswith("notice=acknowledged#ack")
    assert again.headers["location"].endswith("notice=not_left_to_staff#ack")
    assert other.headers["location"].endswith("notice=not_left_to_staff#ack")
    assert unknown_means.status_code == 422
    kept = services.store.acks.get(done.id)
    assert kept is not None and kept.method == "call"  # the first record stands
    assert services.store.acks.get(automatic.id) is None
    assert not services.store.acks.event_recorded(event_key(automatic.id, SENT_KIND))
    assert 'id="ack-by-hand"' not in client.get(f"/ops/complaints/{automatic.reference}").text


def test_the_mailroom_cannot_record_an_acknowledgement(services: Services) -> None:
    message = left_to_staff(services)
    client = logged_in_client(services, "amina", PASSWORD, role="mailroom")

    answer = client.post(
        f"/ops/complaints/{message.reference}/acknowledged",
        data={"means": "call"},
        follow_redirects=False,
    )

    assert answer.status_code == 403
    ack = services.store.acks.get(message.id)
    assert ack is not None and ack.status == "skipped"
