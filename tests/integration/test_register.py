"""The monthly register of a month with known inputs: exact rows, exact sums, read back.

Complaints are recorded through the partner API (backdated into November
2026) on SQLite and PostgreSQL; acknowledgements and answers are written
as the workers and case management would; the XLSX is read back with
openpyxl and the CSV with the csv module.
"""

from __future__ import annotations

import csv
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from config.settings import load_settings
from gateway.app import create_app
from gateway.lib.services import Services, build_services
from gateway.ops.register import register_group, write_csv, write_xlsx
from gateway.store.cases import StatusReport
from normalizer.contract import Channel, Customer
from normalizer.draft import ComplaintDraft, RawInput
from normalizer.pipeline import PipelineContext, normalize
from tests.peers.runners import normalize_captured
from tests.peers.staff import logged_in_client

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Services]:
    changes: dict[str, object] = {"max_backdate_days": 60}
    if request.param == "postgresql":
        changes["database_url"] = request.getfixturevalue("postgres_url")
    built = build_services(load_settings(data_dir=data_dir, **changes))
    try:
        yield built
    finally:
        built.close()


def record(client: TestClient, auth: dict[str, str], received_at: str, body: str, **extra) -> str:
    answer = client.post(
        "/v1/complaints",
        headers=auth | {"Idempotency-Key": str(uuid.uuid4())},
        json={
            "body": body,
            "customer": {"phone": "0612345678"},
            "language": "fr",
            "received_at": received_at,
            **extra,
        },
    )
    assert answer.status_code == 201, answer.text
    normalize_captured(client.app.state.services)  # type: ignore[attr-defined]
    return answer.json()["reference"]


def acknowledge(services: Services, reference: str, at: datetime) -> None:
    """What the ack worker leaves behind for a sent acknowledgement."""
    message = services.store.complaints.get_by_reference(reference)
    assert message is not None
    services.store.acks.skip(message, "sender_not_authenticated")
    services.store.cases.acknowledge_by_hand(
        reference, method="call", at=at, proof=None, note=None, staff="amina", event_id="e1"
    )


@pytest.fixture
def november(services: Services) -> dict[str, str]:
    """Four complaints of November 2026 (local), one of October 31 23:30 UTC (Nov 1 local)."""
    key = services.store.api_keys.create("crm", {"complaints:write", "received-at:backdate"})
    auth = {"Authorization": f"Bearer {key}"}
    client = TestClient(create_app(services))
    refs = {
        # 2026-10-31T23:30Z is 2026-11-01 00:30 in Casablanca (UTC+1): November.
        "early": record(client, auth, "2026-10-31T23:30:00+00:00", "Ma carte est bloquée au GAB"),
        "card": record(client, auth, "2026-11-10T09:00:00+01:00", "carte", product="card"),
        "late": record(client, auth, "2026-11-20T09:00:00+01:00", "mon transfert western union"),
        "open": record(client, auth, "2026-11-30T22:00:00+01:00", "bonjour"),
        # December: not in November's register.
        "december": record(client, auth, "2026-12-01T00:30:00+01:00", "facture lydec"),
    }
    cases = services.store.cases
    acknowledge(services, refs["early"], datetime(2026, 11, 3, 10, tzinfo=UTC))
    acknowledge(services, refs["card"], datetime(2026, 11, 25, 10, tzinfo=UTC))  # 15 days: late
    answered = [
        ("early", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("card", datetime(2026, 11, 30, 10, tzinfo=UTC)),
    ]
    for name, at in answered:
        cases.report(refs[name], StatusReport("answered", at), source="api", actor="cm", now=NOW)
    cases.report(
        refs["late"],
        StatusReport("in_progress", datetime(2026, 11, 21, tzinfo=UTC)),
        source="api",
        actor="cm",
        now=NOW,
    )
    services.store.complaints.record_event(
        RawInput(
            channel=Channel.SMS,
            data=b"STOP",
            content_type="text/plain",
            received_at=datetime(2026, 11, 5, tzinfo=UTC),
            dedup_key="sms:stop:1",
        ),
        "email.autoreply",
        {},
    )
    return refs


def test_the_register_has_one_row_per_complaint_of_the_local_month(services, november) -> None:
    register = services.store.register("Africa/Casablanca").month("2026-11", now=NOW)

    by_reference = {row.reference: row for row in register.rows}

    assert set(by_reference) == {november[name] for name in ("early", "card", "late", "open")}
    early, card = by_reference[november["early"]], by_reference[november["card"]]
    assert (early.ack_days, early.answer_days, early.status) == (2, 20, "answered")
    assert (early.product, card.product) == ("card", "card")
    assert (card.ack_days, card.ack_late, card.answer_days) == (15, True, 20)
    late = by_reference[november["late"]]
    assert (late.status, late.answered_at, late.product) == ("in_progress", None, "money_transfer")
    assert late.ack_late  # never acknowledged, and its 10 days are over
    assert by_reference[november["open"]].triage == "complaint"
    assert register.non_complaints == {"email.autoreply": 1}


def test_the_summary_sums_by_channel_product_origin(services, november) -> None:
    register = services.store.register("Africa/Casablanca").month("2026-11", now=NOW)

    groups = {(g.channel, g.product, g.origin): g for g in register.groups()}

    card = groups[("api", "card", "customer")]
    assert (card.complaints, card.acknowledged, card.answered) == (2, 2, 2)
    assert (card.ack.median, card.ack.p90, card.ack.late) == (8.5, 15.0, 1)
    assert (card.answer.median, card.answer.late) == (20.0, 0)
    total = groups[("*", "*", "*")]
    assert (total.complaints, total.acknowledged, total.answered) == (4, 2, 2)
    assert total.ack.late == 3  # the card acknowledged late, two never acknowledged
    assert groups[("api", "(none)", "customer")].complaints == 1


def test_the_xlsx_reads_back_with_both_sheets(services, november, tmp_path: Path) -> None:
    register = services.store.register("Africa/Casablanca").month("2026-11", now=NOW)
    out = tmp_path / "register.xlsx"

    write_xlsx(register, out)

    book = load_workbook(out)
    assert book.sheetnames == ["register", "summary"]
    lines = list(book["register"].iter_rows(values_only=True))
    assert lines[0][:3] == ("reference", "channel", "origin")
    assert len(lines) == 5
    early = next(line for line in lines if line[0] == november["early"])
    assert early[5] == datetime(2026, 11, 1, 0, 30)  # local time
    assert early[8] == 2
    summary = list(book["summary"].iter_rows(values_only=True))
    total = next(line for line in summary if line and line[0] == "*")
    assert total[3:5] == (4, 2)
    assert ("email.autoreply", 1) in [line[:2] for line in summary if line]


def test_the_csv_has_the_columns_in_order(services, november, tmp_path: Path) -> None:
    register = services.store.register("Africa/Casablanca").month("2026-11", now=NOW)
    out = tmp_path / "register.csv"

    write_csv(register, out)

    with out.open(encoding="utf-8") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 4
    assert lines[0]["received_at"] == "2026-11-01T00:30:00+01:00"
    assert lines[0]["acknowledged_at"].startswith("2026-11-03T11:00:00")


def test_the_command_refuses_a_malformed_month_and_another_extension(
    services, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INTAKE_DATA_DIR", str(services.settings.data_dir))
    if services.settings.database_url:
        monkeypatch.setenv("INTAKE_DATABASE_URL", services.settings.database_url)
    runner = CliRunner()

    bad_month = runner.invoke(register_group, ["export", "--month", "2026-13", "--summary"])
    bad_file = runner.invoke(
        register_group, ["export", "--month", "2026-11", "--out", str(tmp_path / "r.pdf")]
    )
    summary = runner.invoke(register_group, ["export", "--month", "2026-11", "--summary"])

    assert (bad_month.exit_code, bad_file.exit_code, summary.exit_code) == (64, 64, 0)
    assert "not complaints: 0" in summary.output


def test_text_that_looks_like_a_formula_stays_text(services, tmp_path: Path) -> None:
    """A partner's free-text product must not become a live formula in the regulator's file."""
    key = services.store.api_keys.create("crm", {"complaints:write", "received-at:backdate"})
    client = TestClient(create_app(services))
    auth = {"Authorization": f"Bearer {key}"}
    formula = '=HYPERLINK("http://evil.example","x")'
    record(client, auth, "2026-11-10T09:00:00+01:00", "carte", product=formula)
    register = services.store.register("Africa/Casablanca").month("2026-11", now=NOW)
    xlsx, text = tmp_path / "register.xlsx", tmp_path / "register.csv"

    write_xlsx(register, xlsx)
    write_csv(register, text)

    cell = load_workbook(xlsx)["register"]["D2"]
    assert (cell.value, cell.data_type) == (formula, "s")
    with text.open(encoding="utf-8") as handle:
        assert next(csv.DictReader(handle))["product"] == "'" + formula


# -- non-complaints that staff made complaints ------------------------------------------


def triaged_sms(services: Services, body: str, received_at: datetime) -> str:
    """An SMS the triage kept apart (not a complaint), received at ``received_at``; its id."""
    raw = RawInput(
        channel=Channel.SMS,
        data=body.encode(),
        content_type="text/plain; charset=utf-8",
        received_at=received_at,
        dedup_key=f"sms:{uuid.uuid4()}",
    )
    draft = ComplaintDraft(
        channel=Channel.SMS,
        received_at=received_at,
        body=body,
        customer=Customer(phone="+212661234567"),
    )
    normalize(draft, PipelineContext())
    assert draft.triage is not None and not draft.triage.is_complaint
    services.store.triage.record(raw, draft)
    (item,) = [i for i in services.store.triage.listing() if i.received_at == received_at]
    return item.id


def test_a_non_complaint_made_a_complaint_is_counted_once_as_a_complaint(
    services, november
) -> None:
    thanks = triaged_sms(services, "chokran bzaf", datetime(2026, 11, 12, 9, tzinfo=UTC))
    triaged_sms(services, "STOP", datetime(2026, 11, 13, 9, tzinfo=UTC))
    made = services.store.triage.make_complaint(thanks, "karim")
    assert made is not None

    register = services.store.register("Africa/Casablanca").month("2026-11", now=NOW)

    rows = [(row.reference, row.channel, row.triage, row.status) for row in register.rows]
    assert rows == [
        (november["early"], "api", "complaint", "answered"),
        (november["card"], "api", "complaint", "answered"),
        (made.reference, "sms", "complaint", "received"),
        (november["late"], "api", "complaint", "in_progress"),
        (november["open"], "api", "complaint", "received"),
    ]
    assert register.non_complaints == {"email.autoreply": 1, "triage.opt_out": 1}
    assert register.non_complaint_total == 2
    groups = {(g.channel, g.product, g.origin): g for g in register.groups()}
    assert groups[("sms", "(none)", "customer")].complaints == 1
    assert groups[("*", "*", "*")].complaints == 5
    by_channel = [(g.channel, g.complaints) for g in register.groups(by=("channel",))]
    assert by_channel == [("api", 4), ("sms", 1), ("*", 5)]


# -- the staff page ------------------------------------------------------------------------

PASSWORD = "registre-2026-casablanca"


def logged_in(services: Services, name: str, role: str) -> TestClient:
    client: TestClient = logged_in_client(services, name, PASSWORD, role)
    return client


def cells(page: str, channel: str) -> dict[str, str]:
    """The figures of one channel's line of the delays table (``*``: the total)."""
    line = re.search(
        rf'<tr class="register-channel" data-channel="{re.escape(channel)}">(.*?)</tr>', page, re.S
    )
    assert line, page[:2000]
    return dict(re.findall(r'<td class="num ([a-z0-9-]+)">([^<]*)</td>', line.group(1)))


@pytest.fixture
def frozen_page_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page counts "past the deadline" against its clock: the tests' ``NOW``."""
    monkeypatch.setattr("gateway.ops.register_page.now", lambda: NOW)


def test_the_register_page_shows_the_months_figures(services, november, frozen_page_clock) -> None:
    triaged_sms(services, "STOP", datetime(2026, 11, 13, 9, tzinfo=UTC))
    client = logged_in(services, "karim", "operator")

    answer = client.get("/ops/register/", params={"month": "2026-11"})

    assert answer.status_code == 200
    page = answer.text
    assert '<span id="total-complaints">4</span>' in page
    assert cells(page, "api") == cells(page, "*")  # every complaint came by the API
    assert cells(page, "*") == {
        "complaints": "4",
        "acknowledged": "2",
        "ack-median": "8.5",
        "ack-p90": "15",
        "ack-late": "3",
        "answered": "2",
        "answer-median": "20",
        "answer-p90": "20",
        "answer-late": "0",
    }
    assert '<span id="non-complaints-total">2</span>' in page
    assert re.search(r'data-kind="triage.opt_out"><td>[^<]+</td><td class="num">1<', page)
    assert re.search(r'data-kind="email.autoreply"><td>[^<]+</td><td class="num">1<', page)
    # The charts: a bar per channel x product, with the exact figure in its title.
    assert "<title>api · card : 2</title>" in page
    assert "<title>api · money_transfer : 1</title>" in page
    assert 'href="/ops/register/?month=2026-10"' in page
    assert 'href="/ops/register/?month=2026-12"' in page
    assert 'href="/ops/register/export.xlsx?month=2026-11"' in page


def test_the_register_page_downloads_the_same_files_as_the_command(
    services, november, frozen_page_clock, tmp_path: Path
) -> None:
    client = logged_in(services, "karim", "operator")
    register = services.store.register("Africa/Casablanca").month("2026-11", now=NOW)
    write_csv(register, tmp_path / "register.csv")

    text = client.get("/ops/register/export.csv", params={"month": "2026-11"})
    book = client.get("/ops/register/export.xlsx", params={"month": "2026-11"})

    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/csv")
    assert 'filename="register-2026-11.csv"' in text.headers["content-disposition"]
    assert text.content == (tmp_path / "register.csv").read_bytes()
    (tmp_path / "download.xlsx").write_bytes(book.content)
    lines = list(load_workbook(tmp_path / "download.xlsx")["register"].iter_rows(values_only=True))
    assert len(lines) == 5
    assert client.get("/ops/register/export.pdf", params={"month": "2026-11"}).status_code == 404


def test_the_register_page_refuses_a_malformed_month(services) -> None:
    client = logged_in(services, "karim", "operator")

    answer = client.get("/ops/register/", params={"month": "2026-13"})

    assert answer.status_code == 400
    assert 'id="bad-month"' in answer.text


def test_the_register_page_and_its_files_are_refused_to_the_mailroom(services, november) -> None:
    client = logged_in(services, "amina", "mailroom")

    page = client.get("/ops/register/", params={"month": "2026-11"})
    text = client.get("/ops/register/export.csv", params={"month": "2026-11"})

    assert (page.status_code, text.status_code) == (403, 403)
    assert november["card"] not in text.text


def test_a_month_without_inputs_shows_zeros_and_no_table(services, frozen_page_clock) -> None:
    client = logged_in(services, "karim", "operator")

    page = client.get("/ops/register/", params={"month": "2026-10", "lang": "ar"})

    assert page.status_code == 200
    assert '<span id="total-complaints">0</span>' in page.text
    assert 'id="no-complaints"' in page.text and 'class="register-channel"' not in page.text
    assert '<span id="non-complaints-total">0</span>' in page.text
    assert 'dir="rtl"' in page.text
