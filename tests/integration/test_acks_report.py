"""``intake ack report``: which complaints still have no acknowledgement after N days.

Complaints are recorded with a received date in the past (the legal clock
starts there); the command runs as a real subprocess on the same store.
"""

from __future__ import annotations

from datetime import timedelta

from config.settings import Settings
from gateway.acks.acknowledger import Acknowledger
from gateway.lib.services import Services, build_services
from normalizer.contract import Channel, Customer
from tests.peers.acks import other_complaint
from tests.peers.processes import IntakeProcesses, env_for

TEXT = "Bonjour, mon transfert n'est pas arrivé."
LETTER_SENDER = Customer(name="Amina", postal_address="3 rue Allal Ben Abdellah\nFès")


def report_lines(processes: IntakeProcesses, settings: Settings, *args: str) -> tuple[int, list]:  # type: ignore[type-arg]
    done = processes.run("ack", "report", *args, env=env_for(settings))
    rows = [line.split("\t") for line in done.stdout().splitlines()[1:]]
    return done.popen.returncode, rows


def test_the_report_lists_old_complaints_that_were_not_acknowledged(
    services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    old = timedelta(days=12)
    forgotten = other_complaint(
        services, Channel.API, TEXT, Customer(phone="+212661234567"), received_ago=old
    )
    letter = other_complaint(services, Channel.LETTER, TEXT, LETTER_SENDER, received_ago=old)
    other_complaint(services, Channel.API, TEXT, Customer(phone="+212661234568"))  # recent
    Acknowledger(services).handle(letter)  # queued, not yet posted: still not acknowledged

    code, rows = report_lines(intake_processes, settings, "--days", "10")

    assert code == 0
    by_reference = {row[0]: row for row in rows}
    assert set(by_reference) == {forgotten.reference, letter.reference}
    assert by_reference[forgotten.reference][4] == "none"
    assert by_reference[letter.reference][4] == "queued"


def test_the_report_leaves_out_follow_ups_and_sent_acknowledgements(
    services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    old = timedelta(days=15)
    first = other_complaint(services, Channel.LETTER, TEXT, LETTER_SENDER, received_ago=old)
    acknowledger = Acknowledger(services)
    queued = acknowledger.handle(first)
    acknowledger.acks.finish(first.id, "sent")  # as the mailroom's "posted" does
    other_complaint(
        services,
        Channel.API,
        f"Suite de ma réclamation {first.reference}",
        Customer(phone="+212661234567"),
        received_ago=old,
    )

    code, rows = report_lines(intake_processes, settings, "--days", "10", "--check")

    assert queued.status == "queued"
    assert rows == []
    assert code == 0


def test_check_exits_1_when_a_complaint_is_overdue(
    services: Services, settings: Settings, intake_processes: IntakeProcesses
) -> None:
    other_complaint(
        services,
        Channel.API,
        TEXT,
        Customer(phone="+212661234567"),
        received_ago=timedelta(days=11),
    )

    code, rows = report_lines(intake_processes, settings, "--days", "10", "--check")

    assert code == 1
    assert len(rows) == 1


def test_the_report_and_the_acknowledgement_rows_work_on_postgresql(
    data_dir: object, postgres_url: str, intake_processes: IntakeProcesses
) -> None:
    from config.settings import load_settings

    settings = load_settings(data_dir=data_dir, database_url=postgres_url)
    services = build_services(settings)
    try:
        old = timedelta(days=12)
        letter = other_complaint(services, Channel.LETTER, TEXT, LETTER_SENDER, received_ago=old)
        acknowledger = Acknowledger(services)
        first = acknowledger.handle(letter)
        again = acknowledger.handle(letter)  # the unique row, found again
    finally:
        services.close()

    code, rows = report_lines(intake_processes, settings, "--days", "10")

    assert first.id == again.id
    assert code == 0
    assert [(row[0], row[4]) for row in rows] == [(letter.reference, "queued")]
