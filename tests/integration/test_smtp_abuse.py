"""Attacks on the SMTP receiver from the security review, on a real socket (S9, S10, S2, S12).

Each test drives the real receiver (``channels.email.smtp`` in a thread, as
``intake run`` does, beside a normalizer runner) with ``smtplib`` or a bare
socket, and checks what the attacker gets: reply codes, a closed connection,
what is stored, where DATA waits while it arrives. The edge only captures;
what a mail became (complaint, origin, evidence) is read once the runner is
done with it (``settle``).
"""

from __future__ import annotations

import base64
import smtplib
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import select

import channels.email.intake as email_intake
from channels.email.spool import spool_folder
from config.settings import Settings
from gateway.ops.quarantine import replay
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, EvidenceRow, IntakeRow, QuarantineRow
from tests.integration.test_smtp import RECIPIENTS, SENDER, RunningSmtp, deliver, eml, running_smtp
from tests.peers.mail_auth import dkim_key, dns_answering, key_name, sign
from tests.peers.processes import free_port, wait_until


@pytest.fixture
def start_smtp(settings: Settings) -> Iterator[Callable[..., RunningSmtp]]:
    with ExitStack() as stack:

        def start(**overrides: object) -> RunningSmtp:
            values = {"smtp_port": free_port(), "smtp_recipients": RECIPIENTS, **overrides}
            return stack.enter_context(running_smtp(settings.model_copy(update=values)))

        yield start


class Wire:
    """A bare SMTP client: one command, one reply, nothing hidden."""

    def __init__(self, port: int, timeout: float = 15) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> bytes:
        lines = []
        while True:
            line = self.file.readline()
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)

    def command(self, line: str) -> bytes:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        """Whether the server closed the connection (reads until it does or times out)."""
        return self.file.read() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def mail(tag: str, body: bytes = b"Bonjour, mon transfert n'est pas arrive.\r\n") -> bytes:
    return (
        f"From: Amina <{tag}@example.ma>\r\nTo: contact@cashplus.ma\r\n"
        f"Subject: Reclamation {tag}\r\nMessage-ID: <{tag}@example.ma>\r\n\r\n"
    ).encode() + body


def attachment_mail(tag: str, size: int) -> bytes:
    """A short text and a base64 attachment of ``size`` bytes (cheap to normalize)."""
    data = base64.encodebytes(bytes(range(256)) * (size // 256)).replace(b"\n", b"\r\n")
    return (
        (
            f"From: Amina <{tag}@example.ma>\r\nTo: contact@cashplus.ma\r\n"
            f"Subject: Releve {tag}\r\nMessage-ID: <{tag}@example.ma>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\nMon releve est joint.\r\n--b1\r\n"
            "Content-Type: application/octet-stream; name=releve.bin\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + data
        + b"--b1--\r\n"
    )


def complaint_details(smtp: RunningSmtp, reference: str) -> tuple[str, dict]:
    """Origin and details of the complaint the runner made of the capture ``reference``."""
    smtp.settle()
    message = smtp.services.store.complaints.get_by_reference(reference)
    assert message is not None
    return message.origin.value, message.details


# -- S9: slots, idle sessions, NOOP -----------------------------------------------------
def test_one_address_cannot_take_every_connection_slot(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(smtp_max_connections=50, smtp_max_connections_per_address=2)
    held = [smtp.client(), smtp.client()]
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtp.client()
    held.pop().quit()

    def admitted() -> bool:
        try:
            smtp.client().quit()
        except smtplib.SMTPConnectError:
            return False
        return True

    wait_until(admitted, "a slot of this address to be free again", timeout=10)
    held.pop().quit()
    assert refused.value.smtp_code == 421
    assert b"from your address" in refused.value.smtp_error


def test_an_idle_session_is_closed_after_the_idle_timeout(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(smtp_idle_timeout=1)
    wire = Wire(smtp.port, timeout=20)
    try:
        assert wire.command("EHLO attacker.example").startswith(b"250")
        assert wire.closed()  # nothing sent: the server hangs up (aiosmtpd's default: 300 s)
    finally:
        wire.close()
    wait_until(lambda: not smtp.server.sessions, "the idle session to be released")


def test_noop_cannot_keep_a_session_open_forever(start_smtp: Callable[..., RunningSmtp]) -> None:
    smtp = start_smtp(smtp_max_noops=3)
    wire = Wire(smtp.port)
    try:
        replies = [wire.command("NOOP") for _ in range(3)]
        last = wire.command("NOOP")
        closed = wire.closed()
    finally:
        wire.close()
    assert all(reply.startswith(b"250") for reply in replies)
    assert last.startswith(b"421 4.7.0")
    assert closed


def test_a_session_has_a_command_budget(start_smtp: Callable[..., RunningSmtp]) -> None:
    smtp = start_smtp(smtp_max_commands=10)
    wire = Wire(smtp.port)
    try:
        replies = [wire.command("RSET") for _ in range(10)]
        last = wire.command("RSET")
        closed = wire.closed()
    finally:
        wire.close()
    assert all(reply.startswith(b"250") for reply in replies)
    assert last.startswith(b"421 ")
    assert closed


def test_an_ordinary_delivery_fits_well_within_the_budgets(smtp_default: RunningSmtp) -> None:
    with smtp_default.client() as client:
        codes = [deliver(client, mail(f"many-{index}"))[0] for index in range(5)]
    assert codes == [250] * 5


@pytest.fixture
def smtp_default(start_smtp: Callable[..., RunningSmtp]) -> RunningSmtp:
    return start_smtp()


# -- S10: DATA goes to a spool file, not memory --------------------------------------------
def test_data_in_progress_waits_in_a_spool_file_not_in_memory(
    start_smtp: Callable[..., RunningSmtp], settings: Settings
) -> None:
    smtp = start_smtp(smtp_spool_threshold_bytes=4096)
    folder = spool_folder(settings.data_dir)
    body = b"".join(b"ligne %05d du releve de compte\r\n" % index for index in range(20000))
    body += b"..une ligne qui commence par un point\r\n"
    raw = mail("spooled", body)
    wire = Wire(smtp.port)
    try:
        wire.command("EHLO relay.example.ma")
        wire.command(f"MAIL FROM:<{SENDER}>")
        wire.command("RCPT TO:<contact@cashplus.ma>")
        assert wire.command("DATA").startswith(b"354")
        wire.sock.sendall(raw[: len(raw) // 2])
        # The message is half-way: its bytes so far are in a file, not in the process.
        wait_until(lambda: any(folder.glob("data-*.eml")), "a spool file", timeout=10)
        spooled = next(folder.glob("data-*.eml"))
        # All of it but the file's write buffer (64 KiB) is on disk.
        half = len(raw) // 2 - 64 * 1024
        wait_until(lambda: spooled.stat().st_size >= half, "the spool to fill")
        wire.sock.sendall(raw[len(raw) // 2 :] + b".\r\n")
        answer = wire.reply()
        wire.command("QUIT")
    finally:
        wire.close()
    assert answer.startswith(b"250 2.0.0 Queued as ")
    # Captured as sent, dot-stuffing undone (RFC 5321 4.5.2), and kept so as evidence.
    sent = raw.replace(b"\r\n..une", b"\r\n.une")
    captured = smtp.services.store.captures.by_reference(answer.split()[-1].decode())
    assert captured is not None
    assert smtp.services.store.blobs.get(captured.stored_at) == sent
    smtp.settle()
    with reading(smtp.services.store.engine) as session:
        evidence = session.scalars(select(EvidenceRow)).one()
    assert smtp.services.store.blobs.get(evidence.stored_at) == sent
    assert not spooled.exists() and not any(folder.glob("data-*.eml"))


def test_streamed_data_over_the_limit_gets_552_and_leaves_nothing(
    start_smtp: Callable[..., RunningSmtp], settings: Settings
) -> None:
    smtp = start_smtp(email_max_bytes=64 * 1024, smtp_spool_threshold_bytes=4096)
    big = mail("too-big", b"x" * 70 + b"\r\n" + b"padding line of the message\r\n" * 8000)
    with smtp.client() as client:
        code, text = deliver(client, big)  # no SIZE declared: found while streaming
        after, _text = deliver(client, mail("after-the-big-one"))
    smtp.settle()
    assert (code, text.split(" ", 1)[0]) == (552, "5.3.4")
    assert after == 250
    # Refused at the edge: never captured, so the runner has nothing to quarantine.
    assert smtp.rows(IntakeRow) == 1
    assert smtp.rows(QuarantineRow) == 0 and smtp.rows(EvidenceRow) == 1
    assert not any(spool_folder(settings.data_dir).glob("data-*.eml"))


# -- S2: hourly budgets per sender and per client address ---------------------------------
def test_a_sender_over_its_hourly_budget_gets_450_and_only_the_head_is_quarantined(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(smtp_max_messages_per_sender_per_hour=2, quarantine_head_bytes=1024)
    flood = mail("flood-3", b"spam spam spam spam spam spam spam spam spam\r\n" * 2000)
    with smtp.client() as client:
        first = deliver(client, mail("flood-1"))[0]
        second = deliver(client, mail("flood-2"))[0]
        code, text = deliver(client, flood)
    with smtp.client() as client:  # another sender from the same client still gets in
        other = deliver(client, mail("other"), sender="karim@example.ma")[0]
    smtp.settle()
    with reading(smtp.services.store.engine) as session:
        item = session.scalars(select(QuarantineRow)).one()
    assert (first, second, other) == (250, 250, 250)
    assert (code, text.split(" ", 1)[0]) == (450, "4.7.1")
    assert item.reason_code == "rate_limited"
    assert item.size == len(flood)
    assert smtp.services.store.blobs.get(item.stored_at) == flood[:1024]  # the head only
    assert smtp.rows(IntakeRow) == 3  # the refused one was never captured
    assert smtp.rows(ComplaintRow) == 3
    # A head is never parsed as if it were the mail: reprocessing it says why not.
    kept = smtp.services.store.quarantine.get(item.id)
    assert kept is not None
    refused = replay(smtp.services, kept)
    assert not refused.ok
    assert "cannot be reprocessed" in refused.detail
    smtp.settle()
    assert smtp.rows(IntakeRow) == smtp.rows(ComplaintRow) == 3


def test_the_authorities_addresses_have_no_sender_budget(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    # Bank Al-Maghrib forwards many complaints from one address; its client's budget applies.
    smtp = start_smtp(
        smtp_max_messages_per_sender_per_hour=1, smtp_max_messages_per_client_per_hour=3
    )
    with smtp.client() as client:
        codes = [
            deliver(client, mail(f"bkam-{index}"), sender="reclamations@bkam.ma")[0]
            for index in range(4)
        ]
    assert codes == [250, 250, 250, 450]


def test_a_client_address_over_its_hourly_budget_gets_450_whatever_the_sender(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    smtp = start_smtp(smtp_max_messages_per_client_per_hour=2)
    with smtp.client() as client:
        codes = [
            deliver(client, mail(f"rotating-{index}"), sender=f"s{index}@example.ma")[0]
            for index in range(3)
        ]
    smtp.settle()
    assert codes == [250, 250, 450]
    assert smtp.rows(ComplaintRow) == 2


# -- S12: origin only from authenticated mail -------------------------------------------------
def test_a_spoofed_bank_al_maghrib_mail_is_a_customers_complaint(smtp_default: RunningSmtp) -> None:
    with smtp_default.client() as client:
        code, text = deliver(client, eml("forward_bank_al_maghrib.eml"), sender="x@bkam.ma")
    origin, details = complaint_details(smtp_default, text.rsplit(" ", 1)[-1])
    assert code == 250
    assert origin == "customer"
    assert details["claimed_origin"] == "bank_al_maghrib"
    assert details["authentication"] == {"result": "none", "method": None, "domain": None}


def test_a_dkim_signed_bank_al_maghrib_mail_keeps_its_origin(
    start_smtp: Callable[..., RunningSmtp], monkeypatch: pytest.MonkeyPatch
) -> None:
    records = {key_name("bkam.ma"): dkim_key().record}
    monkeypatch.setattr(email_intake, "dkim_dnsfunc", dns_answering(records))
    smtp = start_smtp()
    signed = sign(eml("forward_bank_al_maghrib.eml"), "bkam.ma")
    with smtp.client() as client:
        code, text = deliver(client, signed)
    origin, details = complaint_details(smtp, text.rsplit(" ", 1)[-1])
    assert code == 250
    assert origin == "bank_al_maghrib"
    assert "claimed_origin" not in details
    assert details["authentication"] == {"result": "pass", "method": "dkim", "domain": "bkam.ma"}


def test_results_of_our_trusted_mx_authenticate_the_mail(
    start_smtp: Callable[..., RunningSmtp],
) -> None:
    # Our MX relays to us: the receiver takes mail only from its network.
    smtp = start_smtp(
        trusted_authserv_ids="mx.cashplus.ma",
        email_dkim_verify=False,
        smtp_allowed_networks="127.0.0.0/8",
    )
    raw = (
        b"Authentication-Results: mx.cashplus.ma; dkim=pass header.d=cmmb.ma;"
        b" dmarc=pass header.from=cmmb.ma\r\n"
    ) + eml("forward_bank_al_maghrib.eml").replace(b"reclamations@bkam.ma", b"mediation@cmmb.ma")
    with smtp.client() as client:
        code, text = deliver(client, raw)
    origin, details = complaint_details(smtp, text.rsplit(" ", 1)[-1])
    assert code == 250
    assert origin == "cmmb"
    assert details["authentication"] == {
        "result": "pass",
        "method": "authentication-results",
        "domain": "cmmb.ma",
    }


FORGED_RESULTS = (
    b"Authentication-Results: mx.cashplus.ma; dkim=pass header.d=bkam.ma;"
    b" dmarc=pass header.from=bkam.ma\r\n"
)


def test_a_public_receiver_ignores_trusted_results_written_by_its_peer(
    start_smtp: Callable[..., RunningSmtp], caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can connect to a public MX and write our MX's header on top (S12)."""
    with caplog.at_level("WARNING", logger="intake.smtp"):
        smtp = start_smtp(trusted_authserv_ids="mx.cashplus.ma", email_dkim_verify=False)
    with smtp.client() as client:
        code, text = deliver(
            client, FORGED_RESULTS + eml("forward_bank_al_maghrib.eml"), sender="x@bkam.ma"
        )
    origin, details = complaint_details(smtp, text.rsplit(" ", 1)[-1])
    assert code == 250
    assert origin == "customer"
    assert details["claimed_origin"] == "bank_al_maghrib"
    assert details["authentication"]["result"] in ("none", "fail")
    assert details["authentication"]["method"] != "authentication-results"
    warnings = [
        record.getMessage()
        for record in caplog.records
        if "INTAKE_TRUSTED_AUTHSERV_IDS" in record.getMessage()
    ]
    assert len(warnings) == 1 and "ignored on SMTP" in warnings[0]


def test_the_same_results_from_a_peer_within_the_allowed_networks_are_believed(
    start_smtp: Callable[..., RunningSmtp], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="intake.smtp"):
        smtp = start_smtp(
            trusted_authserv_ids="mx.cashplus.ma",
            email_dkim_verify=False,
            smtp_allowed_networks="127.0.0.0/8, ::1/128",
        )
    with smtp.client() as client:
        code, text = deliver(
            client, FORGED_RESULTS + eml("forward_bank_al_maghrib.eml"), sender="x@bkam.ma"
        )
    origin, details = complaint_details(smtp, text.rsplit(" ", 1)[-1])
    assert code == 250
    assert origin == "bank_al_maghrib"
    assert "claimed_origin" not in details
    assert details["authentication"] == {
        "result": "pass",
        "method": "authentication-results",
        "domain": "bkam.ma",
    }
    assert not [r for r in caplog.records if "INTAKE_TRUSTED_AUTHSERV_IDS" in r.getMessage()]


def test_concurrent_large_messages_each_wait_on_disk(
    start_smtp: Callable[..., RunningSmtp], settings: Settings
) -> None:
    """Four sessions half-way through a 1 MB DATA: four spool files, nothing whole in memory."""
    smtp = start_smtp(smtp_spool_threshold_bytes=8192)
    folder = spool_folder(settings.data_dir)
    raw = attachment_mail("big", 800_000)
    wires = [Wire(smtp.port, timeout=60) for _ in range(4)]
    replies: list[bytes] = []
    try:
        for index, wire in enumerate(wires):
            wire.command("EHLO relay.example.ma")
            wire.command(f"MAIL FROM:<sender{index}@example.ma>")
            wire.command("RCPT TO:<contact@cashplus.ma>")
            wire.command("DATA")
            wire.sock.sendall(raw[: len(raw) // 2])
        # Each half-sent message is in its own file, all of it but the write buffer.
        half = len(raw) // 2 - 64 * 1024

        def spooled() -> bool:
            sizes = [path.stat().st_size for path in folder.glob("data-*.eml")]
            return len(sizes) == 4 and all(size >= half for size in sizes)

        wait_until(spooled, "four spool files holding half a message each")
        threads = []
        for wire in wires:

            def finish(wire: Wire = wire) -> None:
                wire.sock.sendall(raw[len(raw) // 2 :] + b".\r\n")
                replies.append(wire.reply())

            threads.append(threading.Thread(target=finish))
            threads[-1].start()
        for thread in threads:
            thread.join(60)
    finally:
        for wire in wires:
            wire.close()
    assert sorted(reply[:3] for reply in replies) == [b"250"] * 4
    wait_until(lambda: not any(folder.glob("data-*.eml")), "the spool files to go")
