"""The SMTP receiver as operators run it (``intake smtp serve``, ``intake run``), driven by swaks.

swaks is a real, independent SMTP client (Debian package ``swaks``): it
speaks the protocol its own way (its own EHLO, dot-stuffing, line endings),
so these tests catch what a test written against our own client might not.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from config.settings import Settings
from gateway.store import open_store
from gateway.store.tables import ComplaintRow, OutboxRow
from tests.peers.complaints import count_rows
from tests.peers.processes import IntakeProcess, IntakeProcesses, env_for, free_port, wait_for_port

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


def test_swaks_delivery_is_accepted_after_commit(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    _process, port = serve(intake_processes, settings)
    result = swaks(
        port, "--to", "contact@cashplus.ma", "--data", str(MAIL / "fr_signature_quote.eml")
    )
    assert result.returncode == 0, result.stdout
    assert "<-  250 2.0.0 Accepted as complaint CP-" in result.stdout
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
    assert rows(settings, ComplaintRow) == 0


def test_swaks_malformed_message_gets_554(
    intake_processes: IntakeProcesses, settings: Settings, tmp_path: Path
) -> None:
    _process, port = serve(intake_processes, settings)
    junk = tmp_path / "junk.eml"
    junk.write_bytes(b"no headers here, only words\n")
    result = swaks(port, "--to", "contact@cashplus.ma", "--data", str(junk))
    assert "<** 554 5.6.0 Message rejected" in result.stdout


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


def test_several_receivers_share_one_port_and_one_store(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    # More receivers on one host, more cores used: the kernel spreads the
    # connections (SO_REUSEPORT); the store is shared as between any processes.
    import smtplib
    from email.message import EmailMessage

    port = free_port()
    # 30 mails from one sender: over its hourly budget (S2) unless turned off.
    env = env_for(
        settings, smtp_port=port, log_level="INFO", smtp_max_messages_per_sender_per_hour=0
    )
    receivers = [intake_processes.start("smtp", "serve", env=env) for _ in range(2)]
    for process in receivers:
        wait_for_port(port, process)
    for number in range(30):
        mail = EmailMessage()
        mail["From"], mail["To"] = "amina@example.ma", "contact@cashplus.ma"
        mail["Subject"], mail["Message-ID"] = f"Transfert {number}", f"<share-{number}@example.ma>"
        mail.set_content(f"Bonjour, mon transfert numero {number} n'est pas arrive.")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.send_message(mail)

    assert rows(settings, ComplaintRow) == 30
    for process in receivers:
        process.signal(signal.SIGTERM)
        process.wait()
    handled = [process.stderr().count("recorded complaint") for process in receivers]
    assert sum(handled) == 30 and all(handled), handled
