"""Hostile e-mail through the real protocols: SMTP to ``intake run``, IMAP through Dovecot.

For each input: the answer in the protocol's terms (SMTP: ``250 Queued as``
once the bytes are captured, whatever they hold; IMAP: the message captured
and moved to the processed folder, whatever it holds), the raw bytes
quarantined with the reason when refused (by the normalizer runner ``intake
run`` starts, after the capture), memory bounded, and an ordinary complaint
right after still accepted.
"""

from __future__ import annotations

import json
import re
import smtplib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from channels.email.smtp import SmtpServer, run_server
from config.settings import Settings
from gateway.lib.services import Services, build_services
from tests.peers import hostile
from tests.peers.dovecot import DovecotServer
from tests.peers.hostile import marker, quarantined
from tests.peers.hostile_gateway import MEMORY_BOUND_MB, HostileGateway, running_hostile_gateway
from tests.peers.processes import wait_until
from tests.peers.runners import running_normalizer, settled

Build = Callable[[str], bytes]
# The poller reacts within a second; a busy CI machine may take much longer.
IMAP_WAIT = 120.0


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, dovecot: DovecotServer
) -> Iterator[HostileGateway]:
    with running_hostile_gateway(tmp_path_factory.mktemp("hostile"), dovecot) as running:
        yield running


# Refused: (builder, quarantine reason code). Over SMTP the edge parses nothing:
# it answers 250 and the runner quarantines the capture with this reason.
REFUSED: dict[str, tuple[Build, str]] = {
    "10000-mime-parts": (hostile.many_parts_mail, "too_many_parts"),
    "1000-nesting-levels": (hostile.nested_mail, "too_deep"),
    "1-mb-header": (hostile.huge_header_mail, "header_too_large"),
}
# The reply once the mail is captured: what becomes of it is the runner's business.
QUEUED = re.compile(r"2\.0\.0 Queued as (CP-[0-9A-Z]{4}-[0-9A-Z]{4})")


def with_attachment(name: str, data: Callable[[], bytes], kind: str) -> Build:
    return lambda tag: hostile.attachment_mail(tag, name, data(), kind)


# Accepted as complaints (nothing in them is the sender's fault at the protocol
# level), stored unexpanded and never decoded by the gateway itself.
ACCEPTED: dict[str, Build] = {
    "invalid-utf8-and-nul": hostile.bad_bytes_mail,
    "broken-base64": hostile.broken_base64_mail,
    "zip-bomb": with_attachment("releve.zip", hostile.zip_bomb, "application/zip"),
    "pdf-bomb": with_attachment("releve.pdf", hostile.pdf_bomb, "application/pdf"),
    "pixel-flood": with_attachment("capture.png", hostile.pixel_flood_png, "image/png"),
    "polyglot": with_attachment("facture.html", hostile.polyglot_jpeg, "text/html"),
}


def deliver(gateway: HostileGateway, raw: bytes) -> tuple[int, str]:
    with gateway.smtp() as client:
        client.ehlo("relay.example.ma")
        client.mail("amina@example.ma")
        client.rcpt("contact@cashplus.ma")
        try:
            code, text = client.data(raw)
        except smtplib.SMTPDataError as exc:
            error = exc.smtp_error
            code, text = exc.smtp_code, error if isinstance(error, bytes) else error.encode()
    return code, text.decode()


def queued(reply: tuple[int, str]) -> str:
    """The reference of a ``250 2.0.0 Queued as <reference>`` reply."""
    found = QUEUED.fullmatch(reply[1])
    assert reply[0] == 250 and found is not None, reply
    return found.group(1)


def complaint(gateway: HostileGateway, reference: str) -> dict:
    """The complaint the runner made of the capture ``reference`` (waits for it)."""
    with gateway.api() as client:

        def made() -> httpx.Response | None:
            answer = client.get(f"/v1/complaints/{reference}")
            # 200 with state "captured" while the runner has not recorded it yet.
            normalized = answer.status_code == 200 and answer.json()["state"] == "normalized"
            return answer if normalized else None

        answer = wait_until(made, f"the runner to make complaint {reference}")
    assert answer is not None
    return dict(answer.json()["complaint"])


def capture_id(gateway: HostileGateway, reference: str) -> str:
    """The id of the capture the SMTP edge answered ``reference`` for."""
    database = gateway.data_dir / "intake.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        (row,) = connection.execute("SELECT id FROM intake WHERE reference = ?", (reference,))
    return str(row[0])


def quarantine_source_ids(gateway: HostileGateway, sha256: str) -> dict:
    database = gateway.data_dir / "intake.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        (row,) = connection.execute("SELECT source_ids FROM quarantine WHERE sha256 = ?", (sha256,))
    return dict(json.loads(row[0]))


def assert_still_serving(gateway: HostileGateway) -> None:
    tag = marker()
    reference = queued(deliver(gateway, hostile.good_mail(tag)))
    assert tag in json.dumps(complaint(gateway, reference))
    assert gateway.memory_growth_mb() < MEMORY_BOUND_MB


# -- SMTP ------------------------------------------------------------------------
@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_hostile_mail_over_smtp_is_accepted_then_quarantined_with_its_reason_by_the_runner(
    gateway: HostileGateway, case: str
) -> None:
    build, reason = REFUSED[case]
    tag = marker()
    raw = build(tag)

    reference = queued(deliver(gateway, raw))

    kept = wait_until(
        lambda: quarantined(gateway.data_dir, tag.encode(), "email"),
        "the runner to quarantine the capture",
    )
    assert kept is not None
    assert kept.reason_code == reason
    assert hostile.blob_bytes(gateway.data_dir, kept.sha256) == raw
    source_ids = quarantine_source_ids(gateway, kept.sha256)
    assert source_ids["capture_id"] == capture_id(gateway, reference)
    assert "received_at" in source_ids
    assert not any(tag in message for message in hostile.complaint_messages(gateway.data_dir))
    assert_still_serving(gateway)


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_hostile_but_wellformed_mail_over_smtp_becomes_a_complaint_with_its_evidence(
    gateway: HostileGateway, case: str
) -> None:
    tag = marker()
    raw = ACCEPTED[case](tag)

    message = complaint(gateway, queued(deliver(gateway, raw)))

    assert "\x00" not in json.dumps(message["body"] or "") + (message["subject"] or "")
    evidence = hostile.blob_bytes(gateway.data_dir, message["evidence"]["sha256"])
    assert evidence == raw
    assert_still_serving(gateway)


def test_zip_bomb_attachment_is_kept_compressed_and_typed_from_its_bytes(
    gateway: HostileGateway,
) -> None:
    raw = hostile.attachment_mail(marker(), "releve.zip", hostile.zip_bomb(), "text/plain")

    [attachment] = complaint(gateway, queued(deliver(gateway, raw)))["attachments"]
    assert attachment["content_type"] == "application/zip"
    assert attachment["size"] == len(hostile.zip_bomb())


def test_polyglot_attachment_is_typed_by_its_bytes_not_by_its_name(
    gateway: HostileGateway,
) -> None:
    raw = hostile.attachment_mail(marker(), "facture.html", hostile.polyglot_jpeg(), "text/html")

    _code, text = deliver(gateway, raw)

    [attachment] = complaint(gateway, text.rsplit(" ", 1)[-1])["attachments"]
    assert attachment["content_type"] == "image/jpeg"
    assert attachment["declared_type"] == "text/html"


@pytest.mark.parametrize("name", hostile.TRAVERSAL_NAMES, ids=range(len(hostile.TRAVERSAL_NAMES)))
def test_attachment_name_cannot_leave_the_blob_store_or_hide_its_extension(
    gateway: HostileGateway, name: str
) -> None:
    raw = hostile.attachment_mail(marker(), name, hostile.small_png(), "image/png")

    code, text = deliver(gateway, raw)

    [attachment] = complaint(gateway, text.rsplit(" ", 1)[-1])["attachments"]
    assert code == 250
    assert not any(bad in attachment["name"] for bad in hostile.FORBIDDEN_IN_STORED_NAMES)
    assert attachment["name"].endswith(".png")
    assert attachment["stored_at"].startswith("blob:sha256:")
    assert not Path("/tmp/intake-escape.png").exists()
    assert not Path("/etc/cron.d/intake-escape.png").exists()


# -- IMAP ------------------------------------------------------------------------
def imap_quarantined(gateway: HostileGateway, tag: str):  # type: ignore[no-untyped-def]
    return wait_until(
        lambda: quarantined(gateway.data_dir, tag.encode(), "email"),
        "the runner to quarantine the captured message",
        timeout=IMAP_WAIT,
    )


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_hostile_mail_over_imap_is_captured_moved_to_processed_and_quarantined_by_the_runner(
    gateway: HostileGateway, case: str
) -> None:
    build, reason = REFUSED[case]
    account, server = gateway.imap, gateway.dovecot
    tag = marker()

    server.append(account, build(tag))

    kept = imap_quarantined(gateway, tag)
    assert kept.reason_code == reason
    # The poller parses nothing: a refused mail leaves the inbox like any other.
    wait_until(
        lambda: server.count(account, "INBOX") == 0, "the move to Processed", timeout=IMAP_WAIT
    )
    good = marker()
    server.append(account, hostile.good_mail(good))
    wait_until(
        lambda: any(good in message for message in hostile.complaint_messages(gateway.data_dir)),
        "the next mail to become a complaint",
        timeout=IMAP_WAIT,
    )
    assert gateway.memory_growth_mb() < MEMORY_BOUND_MB


@pytest.mark.parametrize("case", ["invalid-utf8-and-nul", "zip-bomb", "pixel-flood"])
def test_hostile_but_wellformed_mail_over_imap_becomes_a_complaint(
    gateway: HostileGateway, case: str
) -> None:
    account, server = gateway.imap, gateway.dovecot
    tag = marker()

    server.append(account, ACCEPTED[case](tag))

    wait_until(
        lambda: any(tag in message for message in hostile.complaint_messages(gateway.data_dir)),
        "the mail to become a complaint",
        timeout=IMAP_WAIT,
    )
    wait_until(
        lambda: server.count(account, "INBOX") == 0, "the inbox to be emptied", timeout=IMAP_WAIT
    )
    gateway.assert_alive()
    assert gateway.memory_growth_mb() < MEMORY_BOUND_MB


# -- PostgreSQL refuses what SQLite takes: NUL in text, strings over a column's length ------
@pytest.fixture
def smtp_on_postgresql(settings: Settings, postgres_url: str) -> Iterator[tuple[int, Services]]:
    """The SMTP edge and a normalizer runner on PostgreSQL (the runner writes the mail's ids)."""
    from tests.peers.processes import free_port

    port = free_port()
    services = build_services(
        settings.model_copy(update={"database_url": postgres_url, "smtp_port": port})
    )
    server, stop = SmtpServer(services), threading.Event()
    thread = threading.Thread(target=run_server, args=(server, stop), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.listening, "the SMTP receiver")
        with running_normalizer(services):
            yield port, services
    finally:
        stop.set()
        thread.join(15)
        services.close()


MESSAGE_IDS = {
    "nul-in-message-id": b"Message-ID: <nul\x00id@example.ma>",
    "900-character-message-id": b"Message-ID: <" + b"a" * 900 + b"@example.ma>",
    "nul-in-references": b"Message-ID: <r@example.ma>\r\nReferences: <a\x00b@example.ma>\r\n"
    b"In-Reply-To: <c\x00d@example.ma>",
}


@pytest.mark.parametrize("case", MESSAGE_IDS, ids=list(MESSAGE_IDS))
def test_hostile_message_ids_are_accepted_on_postgresql_not_retried_forever(
    smtp_on_postgresql: tuple[int, Services], case: str
) -> None:
    port, services = smtp_on_postgresql
    raw = re.sub(rb"Message-ID: [^\r]*", MESSAGE_IDS[case], hostile.good_mail(marker()))
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        refused = client.sendmail("amina@example.ma", ["contact@cashplus.ma"], raw)
        code, _text = client.noop()
    # A 451 here would have the sender retry for days, and an IMAP inbox stuck on it.
    assert refused == {} and code == 250
    # Nor may the runner stumble on the ids and try the capture again and again.
    settled(services)
    assert services.store.captures.outcomes() == {"complaint": 1}
