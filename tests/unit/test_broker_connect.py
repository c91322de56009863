"""Connections to the embedded broker: quiet, and on the data directory's folders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from config.settings import load_settings
from router.broker import connect
from router.consumer import consume_messages


def test_the_embedded_broker_connects_without_kombu_warnings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path)
    with caplog.at_level(logging.WARNING, logger="kombu"):
        # What `intake consume` does with the embedded defaults.
        assert consume_messages(settings, lambda _body: None, timeout=0.2) == 0
        with connect(settings) as connection:
            connection.ensure_connection(max_retries=1)
            connection.clone().release()  # kombu's own pools and retries clone

    assert [record.getMessage() for record in caplog.records] == []
    assert (settings.broker_dir / "messages").is_dir()
