"""Calls to return, end to end: signed Twilio webhooks -> the store -> ``/ops/callbacks/``.

The gateway runs on a socket with its phone worker (which calls a call over
mid-recording missed after the grace); webhooks are signed with twilio's
``RequestValidator``; an operator signs in through the real login form and
posts with the page's CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.settings import Settings
from gateway.lib.http.auth import accounts_for
from gateway.ops.register import summary_text
from gateway.store.call_backs import CallBack
from tests.peers.bidi import add_plain_paragraph, edge_positions
from tests.peers.browser import screenshot
from tests.peers.processes import wait_until
from tests.peers.staff import CSRF_FIELD, StaffBrowser, log_in, log_in_over_http
from tests.peers.twilio import (
    CALLER,
    MediaServer,
    RunningGateway,
    TwilioWebhooks,
    call_params,
    recording_url,
    running_gateway,
    sid,
    twilio_settings,
)

ALWAYS_OPEN = "Mon-Sun 00:00-24:00"
AGENTS = "+212520020900"
OPERATOR = ("karim", "cb-2026-casablanca")
MAILROOM = ("salma", "cb-2026-mailroom-1")


def closed_today(zone: str) -> str:
    """Holidays around today (local), so that an always-open centre is closed now."""
    today = datetime.now(ZoneInfo(zone)).date()
    return ",".join(str(today + timedelta(days=shift)) for shift in (-1, 0, 1))


@dataclass
class Rig:
    gateway: RunningGateway
    hooks: TwilioWebhooks
    media: MediaServer

    def post(self, path: str, call_sid: str, query: str = "", **params: str) -> None:
        response = self.hooks.post(path, call_params(call_sid, **params), query=query)
        assert response.status_code == 200, response.text

    def choose(self, call_sid: str, digit: str = "1", **params: str) -> None:
        self.post("/twilio/voice", call_sid, CallStatus="ringing", **params)
        self.post("/twilio/voice/language", call_sid, query="attempt=1", Digits=digit, **params)

    def hang_up(self, call_sid: str, **params: str) -> None:
        self.post("/twilio/voice/status", call_sid, CallStatus="completed", **params)

    def call_back(self, call_sid: str) -> CallBack | None:
        items = self.gateway.services.store.call_backs.listing()
        items += self.gateway.services.store.call_backs.listing(done=True)
        found = [item for item in items if item.call_sid == call_sid]
        return found[0] if found else None

    def wait_for_call_back(self, call_sid: str) -> CallBack:
        found: CallBack = wait_until(lambda: self.call_back(call_sid), "the call to return")
        return found

    def operator(self) -> tuple[StaffBrowser, str]:
        browser = log_in_over_http(self.gateway.base_url, OPERATOR, "/ops/callbacks/")
        page = browser.get("/ops/callbacks/")
        assert page.status_code == 200, page.text[:500]
        csrf = CSRF_FIELD.search(page.text)
        assert csrf
        return browser, csrf.group(1)


@contextmanager
def make_rig(settings: Settings, **extra: object) -> Iterator[Rig]:
    with MediaServer() as media:
        configured = twilio_settings(
            settings,
            twilio_api_base_url=media.base_url,
            call_centre_hours=ALWAYS_OPEN,
            call_centre_dial=AGENTS,
            call_centre_wait=25,
            **extra,
        )
        with running_gateway(configured) as gateway:
            accounts = accounts_for(gateway.services)
            accounts.add(*OPERATOR, role="operator")
            accounts.add(*MAILROOM, role="mailroom")
            hooks = TwilioWebhooks(target=gateway.base_url)
            yield Rig(gateway, hooks, media)
            hooks.close()


@pytest.fixture
def rig(settings: Settings) -> Iterator[Rig]:
    with make_rig(settings) as made:
        yield made


@pytest.fixture
def closed_rig(settings: Settings) -> Iterator[Rig]:
    with make_rig(settings, call_centre_holidays=closed_today(settings.timezone)) as made:
        yield made


def missed_in_hours(rig: Rig) -> str:
    """In hours: put through, nobody answers, the caller hangs up at the recording prompt."""
    call_sid = sid("CA")
    rig.choose(call_sid, "2")  # Darija
    rig.post("/twilio/voice/dialled", call_sid, query="language=ary", DialCallStatus="no-answer")
    rig.hang_up(call_sid)
    return call_sid


def rows_of(page: str, css_class: str) -> list[str]:
    return re.findall(rf'<tr class="{css_class}".*?</tr>', page, re.DOTALL)


# -- what the phone line notes ------------------------------------------------------
def test_a_call_nobody_answered_is_listed_to_return_with_its_number_isolated_ltr(
    rig: Rig,
) -> None:
    call_sid = missed_in_hours(rig)

    item = rig.wait_for_call_back(call_sid)

    assert (item.reason, item.caller, item.language) == ("missed", CALLER, "ary")
    assert item.reference is None and not item.done
    browser, _csrf = rig.operator()
    page = browser.get("/ops/callbacks/?lang=ar").text
    (row,) = rows_of(page, "to-return")
    assert f'data-call-sid="{call_sid}"' in row
    assert f'<bdi dir="ltr">{CALLER}</bdi>' in row
    assert "مكالمة فائتة" in row  # "missed call"
    assert 'id="to-return-count">1<' in page
    assert 'href="/ops/callbacks/"' in browser.get("/ops/").text


def test_an_out_of_hours_call_without_a_recording_is_to_return_as_out_of_hours(
    closed_rig: Rig,
) -> None:
    call_sid = sid("CA")
    closed_rig.choose(call_sid, "1")  # closed: straight to the recording prompt
    closed_rig.hang_up(call_sid)

    item = closed_rig.wait_for_call_back(call_sid)

    assert (item.reason, item.caller, item.language) == ("out_of_hours_no_message", CALLER, "fr")
    browser, _csrf = closed_rig.operator()
    (row,) = rows_of(browser.get("/ops/callbacks/?lang=fr").text, "to-return")
    assert "hors des heures d&#39;ouverture, sans message" in row


def test_a_caller_who_hangs_up_at_the_menu_is_to_return_at_once(closed_rig: Rig) -> None:
    call_sid = sid("CA")
    closed_rig.post("/twilio/voice", call_sid, CallStatus="ringing")
    closed_rig.hang_up(call_sid)

    item = closed_rig.call_back(call_sid)  # no grace: nothing can be recorded after the menu

    assert item is not None
    assert (item.reason, item.language) == ("out_of_hours_no_message", None)


def test_an_absent_recording_is_an_empty_message_and_stays_one_call_to_return(
    closed_rig: Rig,
) -> None:
    call_sid = sid("CA")
    closed_rig.choose(call_sid, "1")
    closed_rig.post(
        "/twilio/voice/recording-status", call_sid, RecordingStatus="absent", RecordingSid=sid("RE")
    )
    assert closed_rig.call_back(call_sid) is not None
    closed_rig.hang_up(call_sid)
    # The sweep calls it missed after the grace: still one row, still an empty message.
    calls = closed_rig.gateway.services.store.calls()
    wait_until(lambda: getattr(calls.get(call_sid), "state", None) == "missed", "the missed call")

    (item,) = closed_rig.gateway.services.store.call_backs.listing()
    assert (item.call_sid, item.reason) == (call_sid, "empty_message")


def test_a_recording_too_short_makes_a_complaint_and_a_call_to_return_naming_it(
    rig: Rig,
) -> None:
    call_sid = sid("CA")
    rig.choose(call_sid, "1")
    rig.post("/twilio/voice/dialled", call_sid, query="language=fr", DialCallStatus="busy")
    recording_sid = sid("RE")
    rig.post(
        "/twilio/voice/recorded",
        call_sid,
        RecordingSid=recording_sid,
        RecordingUrl=recording_url(rig.media.base_url, recording_sid),
        RecordingDuration="1",
    )

    item = rig.call_back(call_sid)

    complaint = rig.gateway.services.store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert complaint is not None and item is not None
    assert (item.reason, item.reference) == ("empty_message", complaint.reference)


def test_a_recording_long_enough_is_no_call_to_return(rig: Rig) -> None:
    call_sid = sid("CA")
    rig.choose(call_sid, "1")
    rig.post("/twilio/voice/dialled", call_sid, query="language=fr", DialCallStatus="no-answer")
    recording_sid = sid("RE")
    rig.post(
        "/twilio/voice/recorded",
        call_sid,
        RecordingSid=recording_sid,
        RecordingUrl=recording_url(rig.media.base_url, recording_sid),
        RecordingDuration="14",
    )
    rig.hang_up(call_sid)

    assert rig.call_back(call_sid) is None


def test_a_twilio_transcription_without_words_makes_the_call_one_to_return(
    closed_rig: Rig,
) -> None:
    call_sid = sid("CA")
    closed_rig.choose(call_sid, "5")  # English: Twilio transcribes it
    recording_sid = sid("RE")
    closed_rig.post(
        "/twilio/voice/recorded",
        call_sid,
        RecordingSid=recording_sid,
        RecordingUrl=recording_url(closed_rig.media.base_url, recording_sid),
        RecordingDuration="12",
    )
    assert closed_rig.call_back(call_sid) is None  # a message of 12 s: nothing to return yet

    closed_rig.post(
        "/twilio/voice/transcription",
        call_sid,
        RecordingSid=recording_sid,
        TranscriptionSid=sid("TR"),
        TranscriptionStatus="failed",
        TranscriptionText="",
    )

    item = closed_rig.call_back(call_sid)
    store = closed_rig.gateway.services.store
    complaint = store.complaints.find_by_dedup_key(f"twilio:call:{call_sid}")
    assert item is not None and complaint is not None
    assert (item.reason, item.reference, item.language) == (
        "empty_message",
        complaint.reference,
        "en",
    )


def test_a_withheld_number_cannot_be_called_back_and_is_not_listed(rig: Rig) -> None:
    call_sid = sid("CA")
    rig.post("/twilio/voice", call_sid, CallStatus="ringing", From="anonymous")
    rig.hang_up(call_sid, From="anonymous")

    call = rig.gateway.services.store.calls().get(call_sid)
    assert call is not None and call.state == "missed"
    assert rig.call_back(call_sid) is None


# -- the staff page -------------------------------------------------------------------
def test_called_back_keeps_who_when_and_the_note_audits_it_and_moves_it_to_done(
    rig: Rig,
) -> None:
    call_sid = missed_in_hours(rig)
    item = rig.wait_for_call_back(call_sid)
    browser, csrf = rig.operator()

    answer = browser.post(
        f"/ops/callbacks/{item.id}/done",
        {"csrf_token": csrf, "outcome": "Rappelée, elle enverra son relevé par e-mail"},
    )

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ops/callbacks/?notice=done&entry=")
    page = browser.get(answer.headers["location"]).text
    notice = re.search(r'id="notice".*?</p>', page, re.DOTALL)
    assert notice is not None and "[phone …67]" in notice.group(0)
    assert rows_of(page, "to-return") == []
    (done_row,) = rows_of(page, "done")
    assert "karim" in done_row and "elle enverra son relevé" in done_row
    done = rig.call_back(call_sid)
    assert done is not None and done.done_by == "karim"
    assert done.outcome == "Rappelée, elle enverra son relevé par e-mail"
    assert done.done_at is not None
    assert abs(done.done_at - datetime.now(UTC)) < timedelta(minutes=1)
    (entry,) = [
        e for e in rig.gateway.services.store.staff_audit.latest() if e.action == "call_back_done"
    ]
    assert (entry.actor, entry.role, entry.target) == ("karim", "operator", item.id)
    assert CALLER not in (entry.detail or "")  # the trail outlives an erasure: masked
    # Twice: who and when stay the first ones.
    again = browser.post(f"/ops/callbacks/{item.id}/done", {"csrf_token": csrf})
    assert again.headers["location"].startswith("/ops/callbacks/?notice=already_done")
    assert rig.call_back(call_sid) == done


def test_called_back_without_the_csrf_token_is_refused_and_changes_nothing(rig: Rig) -> None:
    call_sid = missed_in_hours(rig)
    item = rig.wait_for_call_back(call_sid)
    browser, _csrf = rig.operator()

    refused = browser.post(f"/ops/callbacks/{item.id}/done", {"outcome": "x"})
    forged = browser.post(f"/ops/callbacks/{item.id}/done", {"csrf_token": "0" * 43})

    assert (refused.status_code, forged.status_code) == (403, 403)
    still = rig.call_back(call_sid)
    assert still is not None and not still.done


def test_a_mailroom_member_may_neither_see_nor_mark_calls_to_return(rig: Rig) -> None:
    call_sid = missed_in_hours(rig)
    item = rig.wait_for_call_back(call_sid)
    browser = log_in_over_http(rig.gateway.base_url, MAILROOM, "/staff/password")
    csrf = CSRF_FIELD.search(browser.get("/staff/password").text)
    assert csrf

    page = browser.get("/ops/callbacks/")
    mark = browser.post(f"/ops/callbacks/{item.id}/done", {"csrf_token": csrf.group(1)})

    assert (page.status_code, mark.status_code) == (403, 403)
    assert CALLER not in page.text
    still = rig.call_back(call_sid)
    assert still is not None and not still.done


def test_an_unknown_item_is_a_notice_not_an_error(rig: Rig) -> None:
    browser, csrf = rig.operator()

    answer = browser.post("/ops/callbacks/no-such-item/done", {"csrf_token": csrf})

    assert answer.headers["location"] == "/ops/callbacks/?notice=not_found"
    assert "Appel introuvable." in browser.get(answer.headers["location"] + "&lang=fr").text


# -- the register -------------------------------------------------------------------
def test_the_register_counts_the_months_calls_to_return_and_those_called_back(
    closed_rig: Rig,
) -> None:
    first, second = sid("CA"), sid("CA")
    for call_sid in (first, second):
        closed_rig.choose(call_sid, "1")
        closed_rig.hang_up(call_sid)
    item = closed_rig.wait_for_call_back(first)
    closed_rig.wait_for_call_back(second)
    browser, csrf = closed_rig.operator()
    browser.post(f"/ops/callbacks/{item.id}/done", {"csrf_token": csrf})
    services = closed_rig.gateway.services
    month = datetime.now(ZoneInfo(services.settings.timezone)).strftime("%Y-%m")

    register = services.store.register(services.settings.timezone).month(month)

    assert register.calls_to_return == {"out_of_hours_no_message": (2, 1)}
    assert register.rows == ()  # not complaints: counted apart
    assert "calls to return: 2 (out_of_hours_no_message 2), 1 called back" in summary_text(register)


# -- the number in an Arabic page, in Chromium ---------------------------------------------
def test_the_number_reads_left_to_right_on_the_arabic_page_and_would_not_unisolated(
    page: Any, settings: Settings
) -> None:
    with running_gateway(settings) as gateway:
        accounts_for(gateway.services).add(*OPERATOR, role="operator")
        gateway.services.store.call_backs.note(
            sid("CA"),
            caller=CALLER,
            language="ary",
            reason="missed",
            received_at=datetime.now(UTC),
        )
        log_in(page, gateway.base_url, "/ops/callbacks/", OPERATOR)
        page.goto(gateway.base_url + "/ops/callbacks/?lang=ar")
        add_plain_paragraph(page, "unisolated", f"الرقم {CALLER}")
        screenshot(page, "ops-callbacks-ar")

        assert page.get_attribute("html", "dir") == "rtl"
        plus, last = edge_positions(page, "tr.to-return td.number", CALLER)
        assert plus < last, "the + is drawn after the digits"
        plain_plus, plain_last = edge_positions(page, "#unisolated", CALLER)
        assert plain_plus > plain_last, "without isolation the + should land on the right"
