"""The web form in two stages: the page answers once the post is captured, a runner records it.

The app runs in-process (``TestClient``) with no runner thread, so each test
sees the post captured and not yet a complaint, then normalizes it in its
own thread (``normalize_captured``), as ``intake normalize-worker`` would.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from config.settings import Settings
from gateway.app import create_app
from gateway.lib.normalize_runner import NORMALIZER_FAILED
from gateway.lib.services import Services, build_services
from gateway.ops.quarantine import replay
from gateway.store.captures import CAPTURED, DONE, QUARANTINED, Captured
from gateway.store.quarantine import Quarantine
from tests.peers.runners import normalize_captured
from tests.peers.webform import REFERENCE, fresh_form, valid_fields

pytestmark = pytest.mark.integration

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
STATUS_STATE = re.compile(r'id="status-state"[^>]*data-state="([a-z_]+)"')


@pytest.fixture
def web(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as client:
        yield client


def post(client: TestClient, text: str, **fields: str) -> tuple[str, Captured]:
    """A post through the form: the reference its page showed and the capture it made."""
    page = client.post("/fr/", data=valid_fields(fresh_form(client), text=text, **fields))
    assert page.status_code == 200, page.text[-500:]
    found = REFERENCE.search(page.text)
    assert found is not None, "no reference on the confirmation page"
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    captured = services.store.captures.by_reference(found.group(0))
    assert captured is not None, "the page's reference is no capture's"
    return found.group(0), captured


def state(services: Services, captured: Captured) -> str:
    found = services.store.captures.state_of(captured.id)
    assert found is not None
    return found[0]


def test_the_page_shows_the_captures_reference_and_the_runner_records_it_under_it(
    web: TestClient, services: Services
) -> None:
    reference, captured = post(web, "Mon transfert vers Agadir n'est jamais arrivé.")

    assert services.store.complaints.get_by_reference(reference) is None  # not at the edge
    assert state(services, captured) == CAPTURED
    assert normalize_captured(services) == 1
    message = services.store.complaints.get_by_reference(reference)
    assert message is not None
    assert message.id == captured.id
    assert message.received_at == captured.received_at
    assert message.ack_due_at == captured.ack_due_at
    assert message.channel.value == "webform"
    assert message.customer.phone == "+212661234567"
    assert state(services, captured) == DONE


def test_the_same_post_again_shows_the_same_reference_before_and_after_the_runner(
    web: TestClient, services: Services
) -> None:
    token = fresh_form(web)
    fields = valid_fields(token, text="Ma carte est bloquée depuis hier soir.")
    pages = [web.post("/fr/", data=fields)]
    normalize_captured(services)
    pages.append(web.post("/fr/", data=fields))

    references = [REFERENCE.findall(page.text)[0] for page in pages]
    assert [page.status_code for page in pages] == [200, 200]
    assert references[0] == references[1]
    assert services.store.captures.outcomes() == {"complaint": 1}


def test_a_post_the_step_raises_on_is_quarantined_after_its_confirmation_the_others_go_on(
    web: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels.webform.staged as staged

    real = staged.build_draft

    def fails_on_one(sub, checked, received_at):  # type: ignore[no-untyped-def]
        if "BOOM" in sub.get("text"):
            raise RuntimeError("a normalizer bug")
        return real(sub, checked, received_at)

    monkeypatch.setattr(staged, "build_draft", fails_on_one)
    bad_reference, bad = post(web, "BOOM: mon virement a disparu.")
    good_reference, good = post(web, "Mon virement est arrivé incomplet.")
    normalize_captured(services)

    assert state(services, bad) == QUARANTINED
    assert services.store.complaints.get_by_reference(bad_reference) is None
    [item] = Quarantine(services.store.engine).entries()
    assert item.reason_code == NORMALIZER_FAILED
    assert item.source_ids["capture_id"] == bad.id
    assert services.store.complaints.get_by_reference(good_reference) is not None
    assert state(services, good) == DONE


def test_a_quarantined_post_replays_with_its_reference_and_receipt_time(
    web: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels.webform.staged as staged

    real = staged.build_draft
    monkeypatch.setattr(staged, "build_draft", lambda *_args: 1 / 0)
    reference, captured = post(web, "Mon transfert n'est pas arrivé, merci de vérifier.")
    normalize_captured(services)
    monkeypatch.setattr(staged, "build_draft", real)  # the bug fixed
    [item] = Quarantine(services.store.engine).entries()

    result = replay(services, item)

    assert result.ok, result.detail
    assert result.reference == reference
    message = services.store.complaints.get_by_reference(reference)
    assert message is not None
    assert message.id == captured.id == result.complaint_id
    assert message.received_at == captured.received_at
    assert state(services, captured) == DONE


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "white").save(buffer, "PNG")
    return buffer.getvalue()


def test_a_post_that_no_longer_passes_the_checks_is_quarantined_linked_to_its_capture(
    web: TestClient, services: Services, settings: Settings
) -> None:
    token = fresh_form(web)
    files = [("attachments", ("recu.png", png(), "image/png"))]
    page = web.post("/fr/", data=valid_fields(token), files=files)
    reference = REFERENCE.findall(page.text)[0]
    # The runner's settings allow no attachment of that size any more.
    stricter = build_services(settings.model_copy(update={"webform_max_attachment_bytes": 10}))
    try:
        normalize_captured(stricter)
    finally:
        stricter.close()

    captured = services.store.captures.by_reference(reference)
    assert captured is not None and state(services, captured) == QUARANTINED
    [item] = Quarantine(services.store.engine).entries()
    assert item.reason_code == "invalid_field"
    assert item.whole  # the whole post, not its head: it can be replayed
    assert item.source_ids["capture_id"] == captured.id
    assert replay(services, item).reference == reference  # the limit as it is here


def look_up(client: TestClient, reference: str, contact: str) -> tuple[int, str]:
    form = client.get("/fr/status/")
    token = TOKEN.search(form.text)
    assert token is not None
    answer = client.post(
        "/fr/status/",
        data={"csrf_token": token.group(1), "reference": reference, "contact": contact},
    )
    return answer.status_code, answer.text


def test_the_status_page_shows_a_post_not_recorded_yet_as_received_with_its_dates(
    web: TestClient, services: Services
) -> None:
    reference, _captured = post(web, "Mon transfert n'est pas arrivé.")

    status, page = look_up(web, reference, "+212 6 61 23 45 67")
    wrong_status, _wrong = look_up(web, reference, "06 61 23 45 68")
    normalize_captured(services)
    later_status, later = look_up(web, reference, "0661234567")

    assert status == 200, page[-800:]
    assert STATUS_STATE.findall(page) == ["received"]
    assert reference in page
    assert 'id="status-ack-due"' in page and 'id="status-answer-due"' in page
    assert wrong_status == 404
    assert later_status == 200 and STATUS_STATE.findall(later) == ["received"]
