"""Hostile e-mail through the real protocols: SMTP to ``intake run``, IMAP through Dovecot.

For each input: the answer in the protocol's terms (SMTP reply code and
enhanced status; IMAP: the message moved to the quarantine or processed
folder), the raw bytes quarantined with the reason when refused, memory
bounded, and an ordinary complaint right after still accepted.
"""

from __future__ import annotations

import json
import re
import smtplib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from channels.email.smtp import SmtpServer, run_server
from config.settings import Settings
from gateway.lib.services import build_services
from tests.peers import hostile
from tests.peers.dovecot import DovecotServer
from tests.peers.hostile import marker, quarantined
from tests.peers.hostile_gateway import MEMORY_BOUND_MB, HostileGateway, running_hostile_gateway
from tests.peers.processes import wait_until

Build = Callable[[str], bytes]
# The poller reacts within a second; a busy CI machine may take much longer.
IMAP_WAIT = 120.0


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, dovecot: DovecotServer
) -> Iterator[HostileGateway]:
    with running_hostile_gateway(tmp_path_factory.mktemp("hostile"), dovecot) as running:
        yield running


# Refused: (builder, SMTP code, enhanced status, quarantine reason code).
REFUSED: dict[str, tuple[Build, int, str, str]] = {
    "10000-mime-parts": (hostile.many_parts_mail, 554, "5.6.0", "too_many_parts"),
    "1000-nesting-levels": (hostile.nested_mail, 554, "5.6.0", "too_deep"),
    "1-mb-header": (hostile.huge_header_mail, 552, "5.3.4", "header_too_large"),
}


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
            code, text = exc.smtp_code, exc.smtp_error
    return code, text.decode()


def complaint(gateway: HostileGateway, reference: str) -> dict:
    with gateway.api() as client:
        answer = client.get(f"/v1/complaints/{reference}")
    assert answer.status_code == 200, answer.text
    return answer.json()["complaint"]


def assert_still_serving(gateway: HostileGateway) -> None:
    code, text = deliver(gateway, hostile.good_mail(marker()))
    assert code == 250 and "complaint CP-" in text, text
    assert gateway.memory_growth_mb() < MEMORY_BOUND_MB


# -- SMTP ------------------------------------------------------------------------
@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_hostile_mail_over_smtp_is_refused_with_its_code_and_quarantined(
    gateway: HostileGateway, case: str
) -> None:
    build, code, enhanced, reason = REFUSED[case]
    tag = marker()
    raw = build(tag)

    reply = deliver(gateway, raw)

    assert reply[0] == code and reply[1].startswith(enhanced), reply
    kept = quarantined(gateway.data_dir, tag.encode(), "email")
    assert kept is not None and kept.reason_code == reason
    assert hostile.blob_bytes(gateway.data_dir, kept.sha256) == raw
    assert_still_serving(gateway)


@pytest.mark.parametrize("case", ACCEPTED, ids=list(ACCEPTED))
def test_hostile_but_wellformed_mail_over_smtp_becomes_a_complaint_with_its_evidence(
    gateway: HostileGateway, case: str
) -> None:
    tag = marker()
    raw = ACCEPTED[case](tag)

    code, text = deliver(gateway, raw)

    assert code == 250, text
    message = complaint(gateway, text.rsplit(" ", 1)[-1])
    assert "\x00" not in json.dumps(message["body"] or "") + (message["subject"] or "")
    evidence = hostile.blob_bytes(gateway.data_dir, message["evidence"]["sha256"])
    assert evidence == raw
    assert_still_serving(gateway)


def test_zip_bomb_attachment_is_kept_compressed_and_typed_from_its_bytes(
    gateway: HostileGateway,
) -> None:
    raw = hostile.attachment_mail(marker(), "releve.zip", hostile.zip_bomb(), "text/plain")

    code, text = deliver(gateway, raw)

    [attachment] = complaint(gateway, text.rsplit(" ", 1)[-1])["attachments"]
    assert code == 250
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
        "the poller to quarantine the message",
        timeout=IMAP_WAIT,
    )


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_hostile_mail_over_imap_goes_to_the_quarantine_folder_with_its_reason(
    gateway: HostileGateway, case: str
) -> None:
    build, _code, _enhanced, reason = REFUSED[case]
    account, server = gateway.imap, gateway.dovecot
    before = server.count(account, "Quarantine")
    tag = marker()

    server.append(account, build(tag))

    kept = imap_quarantined(gateway, tag)
    assert kept.reason_code == reason
    wait_until(
        lambda: server.count(account, "Quarantine") == before + 1,
        "the move to Quarantine",
        timeout=IMAP_WAIT,
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
def smtp_on_postgresql(settings: Settings, postgres_url: str) -> Iterator[int]:
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
        yield port
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
    smtp_on_postgresql: int, case: str
) -> None:
    raw = re.sub(rb"Message-ID: [^\r]*", MESSAGE_IDS[case], hostile.good_mail(marker()))
    with smtplib.SMTP("127.0.0.1", smtp_on_postgresql, timeout=30) as client:
        refused = client.sendmail("amina@example.ma", ["contact@cashplus.ma"], raw)
        code, _text = client.noop()
    # A 451 here would have the sender retry for days, and an IMAP inbox stuck on it.
    assert refused == {} and code == 250
