"""``intake`` starts fast: channels imported on use, help from the table, no needless migration.

Every command an operator or a Procfile line runs pays the start-up; the
IMAP benchmark runs two per batch of mail. What is checked here is *what is
imported*, in a fresh interpreter, rather than seconds (a loaded machine
would make a timing test flaky).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from sqlalchemy import text

from channels import CHANNELS
from config.settings import load_settings
from gateway.cli import lazy_command_help, main
from gateway.store import open_store
from gateway.store.db import at_newest_schema, script_heads

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("fastapi", "sqlalchemy", "alembic", "uvicorn", "fpdf", "twilio", "aiosmtpd")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_help_lists_every_command_without_importing_a_channel() -> None:
    loaded = modules_after(
        "from gateway.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    )

    assert not {name for name in loaded if name.startswith("channels.")}
    assert not loaded & set(HEAVY)


def test_help_texts_in_the_table_are_the_commands_own() -> None:
    for name, listed in lazy_command_help().items():
        command = main.get_command(click.Context(main), name)
        assert command is not None, f"{name} is listed but no channel provides it"
        if not listed:  # listed without help: hidden from ``intake --help``
            assert command.hidden, name
            continue
        stand_in = click.Command(name, help=listed)
        assert stand_in.get_short_help_str(300) == command.get_short_help_str(300), name


def test_every_channel_command_is_in_the_table() -> None:
    listed = CHANNELS.command_help()

    provided = {command.name for adapter in CHANNELS for command in adapter.commands}

    assert provided == set(listed)


def test_a_channel_command_imports_only_its_channel() -> None:
    loaded = modules_after(
        "from gateway.cli import main\nimport click\nmain.get_command(click.Context(main), 'imap')"
    )

    assert "channels.email.imap.cli" in loaded
    assert not {"gateway.acks", "channels.webform", "channels.letters", "channels.twilio"} & loaded


def test_migration_heads_read_from_the_files_are_alembics() -> None:
    from alembic.script import ScriptDirectory

    from gateway.store.db import MIGRATIONS

    scripts = ScriptDirectory(str(MIGRATIONS))

    assert script_heads() == frozenset(scripts.get_heads())


def test_a_store_at_the_newest_schema_opens_without_alembic(tmp_path: Path) -> None:
    open_store(load_settings(data_dir=tmp_path)).close()

    loaded = modules_after(
        "from config.settings import load_settings\n"
        "from gateway.store import open_store\n"
        f"open_store(load_settings(data_dir={str(tmp_path)!r})).close()"
    )

    assert "alembic" not in loaded


@pytest.mark.parametrize("stamps", [["0007"], ["0008", "0007"], []])
def test_a_database_stamped_otherwise_than_the_heads_is_not_skipped(
    tmp_path: Path, stamps: list[str]
) -> None:
    store = open_store(load_settings(data_dir=tmp_path))
    assert at_newest_schema(store.engine)
    with store.engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
        for stamp in stamps:
            connection.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": stamp})

    assert not at_newest_schema(store.engine)
    store.close()
