"""The operator's ``intake`` commands as real subprocesses: exit codes and one-line errors.

What a script or a Procfile manager sees: 69 when the broker is away, 75
when the database is, 70 for a migration the database refuses, 78 for a
wrong setting or a database not migrated, 65 for bad data, 64 for bad
usage, and never a traceback. ``check-config``
only looks: it leaves an empty database empty and declares nothing on the
broker. ``replay`` queues what was published since a date and publishes
it, each message once however often it is run.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from amqp.exceptions import NotFound
from kombu import Connection
from sqlalchemy import create_engine, inspect

from config.settings import Settings, load_settings
from gateway.lib.services import Services
from gateway.store.db import normalize_url
from router.broker import topology_for
from tests.peers.complaints import outbox_rows, record
from tests.peers.processes import IntakeProcess, IntakeProcesses, env_for, free_port
from tests.peers.services import RABBITMQ_URL

ABSENT_BROKER = "amqp://guest:guest@127.0.0.1:{port}//"


def assert_fails(process: IntakeProcess, code: int, error: str) -> None:
    """Exit ``code``, and stderr ends with one line starting ``Error: <error>``, no traceback."""
    stderr = process.stderr()
    assert process.popen.returncode == code, process.describe()
    assert "Traceback" not in stderr, process.describe()
    assert stderr.strip().splitlines()[-1].startswith(f"Error: {error}"), process.describe()


def today(settings: Settings) -> str:
    """Today's date where the gateway runs, as ``--since`` takes it."""
    return datetime.now(ZoneInfo(settings.timezone)).date().isoformat()


# -- relay and consume --------------------------------------------------------
def test_relay_once_with_the_broker_away_exits_69_and_keeps_the_complaint(
    intake_processes: IntakeProcesses, services: Services, settings: Settings
) -> None:
    record(services.store)
    env = env_for(settings, broker_url=ABSENT_BROKER.format(port=free_port()))

    relay = intake_processes.run("relay", "--once", env=env)

    assert_fails(relay, 69, "broker amqp://guest:**@127.0.0.1")
    assert [row.published_at for row in outbox_rows(services.store)] == [None]


def test_relay_once_with_an_unknown_transport_exits_78_naming_the_key(
    intake_processes: IntakeProcesses, services: Services, settings: Settings
) -> None:
    record(services.store)

    relay = intake_processes.run("relay", "--once", env=env_for(settings, broker_url="foo://bar"))

    assert_fails(relay, 78, "configuration error: INTAKE_BROKER_URL: unknown transport 'foo'")


def test_consume_with_the_broker_away_exits_69(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    env = env_for(settings, broker_url=ABSENT_BROKER.format(port=free_port()))

    consumer = intake_processes.run("consume", "--count", "1", "--timeout", "5", env=env)

    assert_fails(consumer, 69, "broker unavailable")


def test_consume_that_times_out_before_its_count_exits_1(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    consumer = intake_processes.run(
        "consume", "--count", "1", "--timeout", "1", env=env_for(settings)
    )

    assert_fails(consumer, 1, "timed out after 0 of 1 message(s)")


# -- check-config and migrate -------------------------------------------------
def test_check_config_on_a_migrated_store_and_a_reachable_broker_exits_0_declaring_nothing(
    intake_processes: IntakeProcesses, amqp_settings: Settings
) -> None:
    env = env_for(amqp_settings)
    assert intake_processes.run("migrate", env=env).popen.returncode == 0

    checked = intake_processes.run("check-config", env=env)

    assert checked.popen.returncode == 0, checked.describe()
    assert "schema up to date" in checked.stdout()
    assert "reachable" in checked.stdout()
    exchange = topology_for(amqp_settings).exchange.name
    with Connection(RABBITMQ_URL, connect_timeout=3) as broker, pytest.raises(NotFound):
        broker.default_channel.exchange_declare(exchange, "topic", passive=True)


@pytest.mark.parametrize("auto_migrate", ["false", "true"])
def test_check_config_on_an_empty_database_says_to_migrate_and_leaves_it_empty(
    intake_processes: IntakeProcesses, data_dir: Path, postgres_url: str, auto_migrate: str
) -> None:
    settings = load_settings(data_dir=data_dir, database_url=postgres_url)

    checked = intake_processes.run("check-config", env=env_for(settings, auto_migrate=auto_migrate))

    assert_fails(checked, 78, "database: empty, no schema yet: run `intake migrate`")
    engine = create_engine(normalize_url(postgres_url))
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert not settings.blob_dir.exists()


def test_check_config_in_a_new_data_folder_creates_nothing(
    intake_processes: IntakeProcesses, tmp_path: Path
) -> None:
    folder = tmp_path / "new"
    checked = intake_processes.run("check-config", env=env_for(load_settings(data_dir=folder)))

    assert_fails(checked, 78, "database: empty")
    assert not folder.exists()


def test_check_config_on_a_schema_behind_this_version_says_to_migrate(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    env = env_for(settings)
    assert intake_processes.run("migrate", env=env).popen.returncode == 0
    with sqlite3.connect(settings.data_dir / "intake.db") as database:
        # One row per head (features add migrations on branches of their own).
        database.execute("DELETE FROM alembic_version")
        database.execute("INSERT INTO alembic_version (version_num) VALUES ('0001')")

    checked = intake_processes.run("check-config", env=env)

    assert_fails(checked, 78, "database: schema at revision 0001, behind")
    assert "run `intake migrate`" in checked.stderr()


def test_check_config_with_an_unknown_transport_exits_78_naming_the_key(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    checked = intake_processes.run("check-config", env=env_for(settings, broker_url="foo://bar"))

    assert_fails(checked, 78, "configuration error: INTAKE_BROKER_URL: unknown transport 'foo'")


def test_migrate_with_the_database_away_exits_75_with_one_line(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    away = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/intake"

    migrated = intake_processes.run("migrate", env=env_for(settings, database_url=away))

    assert_fails(migrated, 75, "cannot migrate the database at postgresql://postgres:***@")
    assert "secret" not in migrated.stderr()


def test_migrate_on_a_file_that_is_not_a_database_exits_70_not_to_be_retried(
    intake_processes: IntakeProcesses, settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "intake.db"
    target.write_bytes(b"Service Reclamations, not a database. " * 100)

    migrated = intake_processes.run(
        "migrate", env=env_for(settings, database_url=f"sqlite:///{target}")
    )

    assert_fails(migrated, 70, "cannot migrate the database at sqlite:///")
    assert "file is not a database" in migrated.stderr()


# -- api-key and replay ---------------------------------------------------------
def test_api_key_create_with_a_name_already_taken_exits_65(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    env = env_for(settings)
    assert intake_processes.run("api-key", "create", "crm", env=env).popen.returncode == 0

    again = intake_processes.run("api-key", "create", "crm", env=env)

    assert_fails(again, 65, "an API key named 'crm' already exists")


def test_republish_since_a_date_that_is_not_one_exits_64(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    replayed = intake_processes.run("republish", "--since", "yesterday", env=env_for(settings))

    assert_fails(replayed, 64, "--since: not a date or time: 'yesterday'")


def test_republish_publishes_each_message_again_with_the_same_id(
    intake_processes: IntakeProcesses, amqp_settings: Settings, amqp_services: Services
) -> None:
    created = record(amqp_services.store).message.id
    env = env_for(amqp_settings)
    assert intake_processes.run("relay", "--once", env=env).popen.returncode == 0

    replayed = intake_processes.run("republish", "--since", today(amqp_settings), env=env)
    # One more than arrives, so the wait ends on the timeout only if nothing else came.
    consumer = intake_processes.run("consume", "--count", "3", "--timeout", "3", env=env)

    assert replayed.popen.returncode == 0, replayed.describe()
    assert "queued 1 message(s)" in replayed.stderr()
    assert "published 1 message(s)" in replayed.stderr()
    assert [event["id"] for event in consumer.json_lines()] == [created, created]
    assert_fails(consumer, 1, "timed out after 2 of 3 message(s)")


def test_republish_run_twice_before_publication_queues_each_message_once(
    intake_processes: IntakeProcesses, services: Services, settings: Settings
) -> None:
    created = record(services.store).message.id
    env = env_for(settings)
    assert intake_processes.run("relay", "--once", env=env).popen.returncode == 0

    first = intake_processes.run("republish", "--no-publish", "--since", today(settings), env=env)
    second = intake_processes.run("republish", "--no-publish", "--since", today(settings), env=env)

    assert "queued 1 message(s)" in first.stderr(), first.describe()
    assert "queued 0 message(s)" in second.stderr(), second.describe()
    waiting = [row.event_id for row in outbox_rows(services.store) if row.published_at is None]
    assert waiting == [created]


def test_replay_the_old_name_of_republish_still_works_and_says_it_is_deprecated(
    intake_processes: IntakeProcesses, services: Services, settings: Settings
) -> None:
    record(services.store)
    env = env_for(settings)
    assert intake_processes.run("relay", "--once", env=env).popen.returncode == 0

    old = intake_processes.run("replay", "--no-publish", "--since", today(settings), env=env)

    assert old.popen.returncode == 0, old.describe()
    assert "deprecated" in old.stderr().lower()
    assert "queued 1 message(s)" in old.stderr()
