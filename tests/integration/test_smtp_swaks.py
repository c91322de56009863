"""The SMTP receiver as operators run it (``intake smtp serve``, ``intake run``), driven by swaks.

swaks is a real, independent SMTP client (Debian package ``swaks``): it
speaks the protocol its own way (its own EHLO, dot-stuffing, line endings),
so these tests catch what a test written against our own client might not.

``intake smtp serve`` only captures what it accepts; the complaint (or the
quarantine) is made by a normalizer runner, which operators run beside it
(``intake normalize-worker``, the Procfile's ``normalize``) and ``intake
run`` starts in its own process. Here ``intake normalize-worker --once``
drains the captures after the deliveries.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from gateway.store import open_store
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, IntakeRow, OutboxRow, QuarantineRow
from tests.peers.complaints import count_rows
from tests.peers.processes import (
    IntakeProcess,
    IntakeProcesses,
    env_for,
    free_port,
    wait_for_port,
    wait_until,
)

MAIL = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


@pytest.fixture(autouse=True)
def _require_swaks() -> None:
    if shutil.which("swaks") is None:
        pytest.fail("swaks is not installed (scripts/setup installs it)")


def serve(
    processes: IntakeProcesses, settings: Settings, *args: str, **extra: object
) -> tuple[IntakeProcess, int]:
    port = free_port()
    env = env_for(settings, smtp_port=port, log_level="INFO", **extra)
    process = processes.start(*(args or ("smtp", "serve")), env=env)
    wait_for_port(port, process)
    return process, port


def swaks(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", "--from", "amina@example.ma", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rows(settings: Settings, model: type) -> int:
    store = open_store(settings)
    try:
        return count_rows(store, model)
    finally:
        store.close()


def normalize(processes: IntakeProcesses, settings: Settings) -> IntakeProcess:
    """``intake normalize-worker --once``: what is captured now, normalized; it exited 0."""
    process = processes.run("normalize-worker", "--once", env=env_for(settings))
    assert process.popen.returncode == 0, process.describe()
    return process


def queued_reference(result: subprocess.CompletedProcess[str]) -> str:
    """The reference in swaks' transcript of a ``250 2.0.0 Queued as <reference>``."""
    (line,) = [line for line in result.stdout.splitlines() if "250 2.0.0 Queued as " in line]
    return line.rsplit(" ", 1)[-1]


def test_swaks_delivery_is_queued_after_the_capture_and_made_a_complaint_by_the_worker(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    _process, port = serve(intake_processes, settings)
    result = swaks(
        port, "--to", "contact@cashplus.ma", "--data", str(MAIL / "fr_signature_quote.eml")
    )
    assert result.returncode == 0, result.stdout
    assert "<-  250 2.0.0 Queued as CP-" in result.stdout
    reference = queued_reference(result)
    # Durable before the 250; the receiver itself parses nothing.
    assert rows(settings, IntakeRow) == 1
    assert rows(settings, ComplaintRow) == 0
    worker = normalize(intake_processes, settings)
    assert worker.stdout().strip() == "1 normalized, 0 quarantined"
    assert f"recorded complaint {reference}" in worker.stderr()
    assert rows(settings, ComplaintRow) == rows(settings, OutboxRow) == 1


def test_swaks_unknown_recipient_gets_550(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    _process, port = serve(intake_processes, settings)
    result = swaks(port, "--to", "someone@example.com")
    assert result.returncode != 0
    assert "<** 550 5.1.1" in result.stdout


def test_swaks_oversized_message_gets_552(
    intake_processes: IntakeProcesses, settings: Settings, tmp_path: Path
) -> None:
    _process, port = serve(intake_processes, settings, email_max_bytes=2048)
    big = tmp_path / "big.eml"
    big.write_bytes((MAIL / "fr_signature_quote.eml").read_bytes() + b"padding line\n" * 400)
    result = swaks(port, "--to", "contact@cashplus.ma", "--data", str(big))
    assert result.returncode != 0
    assert "<** 552 " in result.stdout
    assert rows(settings, IntakeRow) == rows(settings, ComplaintRow) == 0


def test_swaks_malformed_message_is_queued_then_quarantined_by_the_worker(
    intake_processes: IntakeProcesses, settings: Settings, tmp_path: Path
) -> None:
    _process, port = serve(intake_processes, settings)
    junk = tmp_path / "junk.eml"
    junk.write_bytes(b"no headers here, only words\n")
    result = swaks(port, "--to", "contact@cashplus.ma", "--data", str(junk))
    assert result.returncode == 0, result.stdout
    assert "<-  250 2.0.0 Queued as CP-" in result.stdout
    normalize(intake_processes, settings)
    store = open_store(settings)
    try:
        with reading(store.engine) as session:
            item = session.scalars(select(QuarantineRow)).one()
        captured = store.captures.by_reference(queued_reference(result))
    finally:
        store.close()
    assert item.reason_code == "malformed"
    assert captured is not None and item.source_ids["capture_id"] == captured.id
    assert rows(settings, ComplaintRow) == 0


def test_serve_stops_cleanly_on_sigterm(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    process, _port = serve(intake_processes, settings)
    process.signal(signal.SIGTERM)
    assert process.wait(20) == 0, process.describe()
    assert "SMTP receiver stopped" in process.stderr()


def test_serve_without_a_port_exits_78_with_one_line(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    env = env_for(settings)
    env.pop("INTAKE_SMTP_PORT", None)
    process = intake_processes.run("smtp", "serve", env=env)
    assert process.popen.returncode == 78
    assert process.stderr().strip().splitlines() == [
        "Error: configuration error: INTAKE_SMTP_PORT is not set"
    ]


def test_intake_run_starts_the_smtp_worker_when_a_port_is_set(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    _process, port = serve(intake_processes, settings, "run", http_port=free_port())
    result = swaks(
        port, "--to", "contact@cashplus.ma", "--data", str(MAIL / "ary_latin_script.eml")
    )
    assert result.returncode == 0, result.stdout
    # ``intake run`` also runs a normalizer: the capture becomes a complaint on its own.
    wait_until(lambda: rows(settings, ComplaintRow) == 1, "the complaint of the capture")


def test_serve_on_a_busy_port_exits_69_with_one_line(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = intake_processes.run("smtp", "serve", env=env_for(settings, smtp_port=port))
    lines = process.stderr().strip().splitlines()
    assert process.popen.returncode == 69
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot listen on 127.0.0.1:{port}")


def accepted_from(pid: int, port: int) -> set[int]:
    """Client ports of the connections process ``pid`` holds, accepted on ``port`` (Linux)."""
    return {client for client in _held_on(pid, port) if client}


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port`` (Linux)."""
    return 0 in _held_on(pid, port)


def _held_on(pid: int, port: int) -> set[int]:
    """Remote ports of ``pid``'s sockets on local ``port`` (0: the listening one)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    peers = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        client_port = int(remote.split(":")[1], 16)
        if inode in inodes and int(local.split(":")[1], 16) == port:
            peers.add(client_port)
    return peers


def test_several_receivers_share_one_port_and_one_store(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    # More receivers on one host, more cores used: the kernel spreads the
    # connections (SO_REUSEPORT); the store is shared as between any processes.
    port = free_port()
    # 30 mails from one sender: over its hourly budget (S2) unless turned off; 30
    # sessions at once from one address: over its connection slots (S9) unless raised.
    env = env_for(
        settings,
        smtp_port=port,
        log_level="INFO",
        smtp_max_messages_per_sender_per_hour=0,
        smtp_max_connections_per_address=30,
    )
    receivers = [intake_processes.start("smtp", "serve", env=env) for _ in range(2)]
    for process in receivers:
        wait_for_port(port, process)
    # The port answers once the first one listens: wait for the second one too.
    wait_until(lambda: all(listens(process.pid, port) for process in receivers), "both listening")
    clients = [smtplib.SMTP("127.0.0.1", port, timeout=30) for _ in range(30)]
    try:
        ours = {client.sock.getsockname()[1] for client in clients if client.sock is not None}
        # Greeted, so accepted: each session is held by one receiver, as /proc shows.
        held = [accepted_from(process.pid, port) for process in receivers]
        refused = []
        for number, client in enumerate(clients):
            mail = EmailMessage()
            mail["From"], mail["To"] = "amina@example.ma", "contact@cashplus.ma"
            mail["Subject"] = f"Transfert {number}"
            mail["Message-ID"] = f"<share-{number}@example.ma>"
            mail.set_content(f"Bonjour, mon transfert numero {number} n'est pas arrive.")
            refused.append(client.send_message(mail))  # raises unless DATA got a 250
            client.quit()
    finally:
        for client in clients:
            client.close()
    assert refused == [{}] * 30
    # Every session was held by exactly one receiver, and each receiver held some.
    assert held[0].isdisjoint(held[1]) and held[0] | held[1] == ours, (held, ours)
    assert all(held), held
    assert rows(settings, IntakeRow) == 30
    for process in receivers:
        process.signal(signal.SIGTERM)
        process.wait()
    normalize(intake_processes, settings)
    assert rows(settings, ComplaintRow) == 30
