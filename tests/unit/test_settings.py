import re
from pathlib import Path

import pytest

from config.settings import ConfigError, Settings, load_settings
from gateway.store import checked_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.env"


def test_wrong_value_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="INTAKE_HTTP_PORT"):
        load_settings(http_port="eighty")


def test_wrong_value_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTAKE_CONFIRM_TIMEOUT", "-1")
    with pytest.raises(ConfigError, match="INTAKE_CONFIRM_TIMEOUT"):
        load_settings()


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ConfigError, match="INTAKE_TIMEZONE"):
        load_settings(timezone="Mars/Olympus")


def test_unknown_broker_transport_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(broker_url="foo://user:s3cret@host/")
    assert str(refused.value) == "INTAKE_BROKER_URL: unknown transport 'foo'"


def test_misspelt_broker_transport_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"INTAKE_BROKER_URL: .*did you mean 'amqp'"):
        load_settings(broker_url="amqq://guest:guest@127.0.0.1:5672//")


def test_broker_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="INTAKE_BROKER_URL: not a broker URL"):
        load_settings(broker_url="rabbitmq.internal:5672")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("mysqlx://intake:s3cret@db/intake", "unknown database dialect 'mysqlx'"),
        ("not a url", "not a database URL"),
        ("sqlite+pysqlcipher://:s3cret@/intake.db", "the driver of 'sqlite+pysqlcipher'"),
    ],
    ids=["unknown-dialect", "not-a-url", "driver-missing"],
)
def test_database_url_the_store_cannot_open_fails_naming_the_variable(
    url: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        checked_settings(load_settings(database_url=url))
    assert str(refused.value).startswith(f"INTAKE_DATABASE_URL: {problem}")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://intake:s3cret@db:5432/intake",
        "postgres://intake@db/intake",
        "sqlite:////var/lib/intake/intake.db",
    ],
)
def test_database_urls_the_store_opens_are_accepted(url: str) -> None:
    assert checked_settings(load_settings(database_url=url)).database_url == url


@pytest.mark.parametrize(
    "url", ["amqp://guest:guest@127.0.0.1:5672//", "pyamqp://rabbit/", "filesystem://", "memory://"]
)
def test_broker_urls_kombu_knows_are_accepted(url: str) -> None:
    assert load_settings(broker_url=url).broker_url == url


def test_embedded_defaults_need_no_server(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.resolved_database_url.startswith("sqlite:///")
    assert settings.uses_embedded_broker


def test_example_env_documents_every_setting_with_its_default() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = dict(
        re.findall(r"^#?\s*((?:INTAKE|TWILIO)_[A-Z0-9_]+)=(.*)$", text, flags=re.MULTILINE)
    )
    expected = {_variable(name) for name in Settings.model_fields}
    assert expected <= set(documented), f"missing: {sorted(expected - set(documented))}"
    assert set(documented) <= expected, f"unknown: {sorted(set(documented) - expected)}"
    defaults = Settings()
    for name, field in Settings.model_fields.items():
        value = getattr(defaults, name)
        shown = documented[_variable(name)].strip()
        rendered = str(value).lower() if isinstance(value, bool) else str(value)
        if value is None:
            rendered = ""
        elif hasattr(value, "get_secret_value"):
            rendered = value.get_secret_value()
        assert shown == rendered, (
            f"INTAKE_{name.upper()}: example says {shown!r}, default is {rendered!r} ({field})"
        )


def _variable(name: str) -> str:
    """The environment variable of a setting (its first alias, else INTAKE_NAME)."""
    alias = Settings.model_fields[name].validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"INTAKE_{name.upper()}"
