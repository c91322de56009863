"""The IMAP channel's small pure parts: token command, backoff, fetch sizing, IDLE replies."""

from __future__ import annotations

import shlex
import sys
from datetime import UTC, datetime

import pytest

from channels.email.imap.connection import ImapConfigError, command_token, mailbox_name
from channels.email.imap.mailbox import FETCH_BYTES, _chunks_by_size
from channels.email.imap.outcomes import Tally
from channels.email.imap.poller import Backoff
from channels.email.imap.waiting import _is_bye, _is_news
from config.settings import load_settings
from gateway.store.captures import Captured


def python(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_token_is_the_first_line_the_command_prints() -> None:
    settings = load_settings(imap_oauth_token_command=python("print('ya29.tok'); print('x')"))
    assert command_token(settings) == "ya29.tok"


def test_failing_token_command_is_an_auth_error_that_does_not_quote_stdout() -> None:
    settings = load_settings(
        imap_oauth_token_command=python("import sys; print('half-a-token'); sys.exit(3)")
    )
    with pytest.raises(ImapConfigError, match="exited with 3") as caught:
        command_token(settings)
    assert "half-a-token" not in str(caught.value)


def test_xoauth2_without_a_token_command_is_an_auth_error() -> None:
    with pytest.raises(ImapConfigError, match="INTAKE_IMAP_OAUTH_TOKEN_COMMAND"):
        command_token(load_settings())


def test_missing_token_program_is_an_auth_error() -> None:
    settings = load_settings(imap_oauth_token_command="/nonexistent/get-token")
    with pytest.raises(ImapConfigError, match="could not run"):
        command_token(settings)


def test_checkpoint_key_ignores_the_port() -> None:
    implicit = load_settings(imap_host="mail.example", imap_user="rec", imap_port=993)
    starttls = load_settings(imap_host="mail.example", imap_user="rec", imap_port=143)
    assert mailbox_name(implicit).key == mailbox_name(starttls).key


@pytest.mark.parametrize(("failures", "ceiling"), [(1, 1.0), (2, 2.0), (4, 8.0), (30, 60.0)])
def test_backoff_doubles_up_to_its_ceiling_with_jitter(failures: int, ceiling: float) -> None:
    delays = [Backoff(first=1.0, ceiling=60.0).delay(failures) for _ in range(50)]
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)


def test_fetch_chunks_stay_under_the_byte_budget() -> None:
    sizes = {1: FETCH_BYTES // 2, 2: FETCH_BYTES // 2, 3: 10, 4: FETCH_BYTES * 3, 5: 10}
    assert list(_chunks_by_size([1, 2, 3, 4, 5], sizes)) == [[1, 2], [3], [4], [5]]


def test_exists_is_news_but_expunge_and_flag_changes_are_not() -> None:
    assert _is_news((4, b"EXISTS"))
    assert not _is_news((3, b"EXPUNGE"))
    assert not _is_news((2, b"FETCH", (b"FLAGS", (b"\\Seen",))))
    assert not _is_news((b"OK", b"Still here"))


def test_bye_ends_the_session() -> None:
    assert _is_bye((b"BYE", b"Server shutting down."))
    assert not _is_bye((1, b"EXISTS"))


def _capture(*, created: bool) -> Captured:
    moment = datetime(2025, 3, 14, tzinfo=UTC)
    return Captured("c", "email", "CP-AAAA-AAAA", moment, moment, moment, created=created)


def test_tally_counts_complaints_recorded_before_among_complaints() -> None:
    tally = Tally()
    new, again = _capture(created=True), _capture(created=False)
    for captured in (new, new, again, new):
        tally.count_capture(captured)
    tally.count_outcome(new, "complaint")
    tally.count_outcome(new, "repeat")  # a complaint recorded before captures existed
    tally.count_outcome(again, "complaint")  # the poller's capture, normalized or not
    tally.count_outcome(new, "quarantined")
    assert (tally.captured, tally.repeated, tally.total) == (4, 1, 4)
    assert (tally.complaints, tally.known, tally.quarantined) == (3, 2, 1)
    assert "3 complaint(s) (2 already recorded)" in tally.describe()


def test_tally_of_a_backfill_tells_what_still_waits_for_a_runner() -> None:
    tally = Tally()
    tally.count_outcome(_capture(created=False), None)
    assert tally.pending == 1
    assert tally.describe().endswith("1 still waiting for a runner")


def test_tally_of_a_sync_describes_captures() -> None:
    tally = Tally(captured=3, repeated=1)
    assert tally.total == 3
    assert tally.describe_captures() == "3 captured (1 already captured), 0 failed"
