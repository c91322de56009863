"""The HTTP edge against anonymous abuse, over real sockets to a real ``intake web``.

- S1: a form post is answered from its head (token, flood guard) before its
  files are read, and form posts beyond the per-process cap get a 503 page
  at once.
- S2: refused form input is quarantined as its head (size and sha256 of the
  whole), under a global quota; such an item cannot be reprocessed.
- S11: the letter uploads answer 401 before their body is read.
- S18: a connection that sends its headers too slowly, or nothing, is closed;
  a form post whose body does not come in time gets a 408 page, is closed
  and frees its slot.
- S20: past the per-address limits, a browser that did its token's proof of
  work gets the token's own budget instead of a 429 (its attachment checks
  too), but one address opens only so many token budgets an hour.

"Before the body is read" is checked on the wire: the client declares a
large body, sends only its head, and gets its answer while most of the
body was never sent.
"""

from __future__ import annotations

import hashlib
import html
import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from config.settings import Settings
from gateway.store import Store, open_store
from gateway.store.db import reading
from gateway.store.tables import ComplaintRow, QuarantineRow
from tests.peers import hostile, scans
from tests.peers.hostile import FilePart
from tests.peers.processes import IntakeProcesses, wait_until
from tests.peers.webform import REFERENCE, WebService, fresh_form, start_web, valid_fields

BIG = 30 * 1024 * 1024  # declared, never sent whole
POW_BITS = re.compile(r'data-pow-bits="(\d+)"')
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings, migrate_schema=False)
    try:
        yield opened
    finally:
        opened.close()


def connect(web: WebService) -> socket.socket:
    parts = urlsplit(web.url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=20)
    return sock


def cookie_header(client: httpx.Client) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


def post_head_only(
    web: WebService,
    path: str,
    head: bytes,
    content_type: str,
    *,
    extra_headers: str = "",
    declared: int = BIG,
) -> tuple[socket.socket, bytes]:
    """Send a request declaring ``declared`` body bytes but only ``head``; read its answer."""
    sock = connect(web)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {declared}\r\n{extra_headers}\r\n"
    ).encode()
    sock.sendall(request + head)
    return sock, read_answer(sock)


def read_answer(sock: socket.socket) -> bytes:
    """What the server answered, up to the end of its (Content-Length) body."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    found = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    length = int(found.group(1)) if found else 0
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def form_head(token: str, file_size: int = 150_000, **fields: str) -> tuple[bytes, str]:
    """A browser-shaped post (token first, then the fields, then a file) and its type.

    Sent as the head of a larger declared body, the default is just over
    what the form reads before its guards (``FIELDS_BYTES``): bytes the
    server never reads would make its kernel reset the connection on close,
    losing the answer before the client reads it.
    """
    body, content_type = hostile.multipart_body(
        valid_fields(token, **fields),
        [FilePart("attachments", b"scan.png", b"\x00" * file_size, "image/png")],
    )
    return body, content_type


def complaints(store: Store) -> int:
    """The complaints recorded, once the runner has made every captured post one."""
    wait_until(lambda: not store.captures.backlog(), "the captured posts to be normalized")
    with reading(store.engine) as session:
        return len(list(session.scalars(select(ComplaintRow.id))))


def quarantined_rows(store: Store) -> list[QuarantineRow]:
    with reading(store.engine) as session:
        rows = list(session.scalars(select(QuarantineRow).order_by(QuarantineRow.created_at)))
        session.expunge_all()
        return rows


# -- S1: the form's guards come before its body -----------------------------------
def test_a_form_post_without_a_valid_token_is_refused_before_its_files_are_sent(
    intake_processes: IntakeProcesses, settings: Settings, store: Store
) -> None:
    web = start_web(intake_processes, settings)
    head, content_type = form_head("not-a-token")

    sock, answer = post_head_only(web, "/fr/", head, content_type)
    sock.close()

    # 150 KB of a declared 30 MB were sent: the 403 came from the head alone.
    assert status_of(answer) == 403
    assert "Le formulaire a expiré" in html.unescape(answer.decode("utf-8", "replace"))
    assert complaints(store) == 0 and quarantined_rows(store) == []


def test_a_form_post_over_the_flood_guard_is_refused_before_its_files_are_sent(
    intake_processes: IntakeProcesses, settings: Settings, store: Store
) -> None:
    web = start_web(
        intake_processes,
        settings,
        webform_max_posts_per_hour=1,
        webform_max_per_hour=1,
        webform_pow_bits=0,
    )
    with httpx.Client(base_url=web.url, timeout=30) as client:
        token = fresh_form(client)
        first = client.post("/fr/", data=valid_fields(token, phone="12"))
        assert first.status_code == 422
        head, content_type = form_head(token)
        sock, answer = post_head_only(
            web, "/fr/", head, content_type, extra_headers=f"Cookie: {cookie_header(client)}\r\n"
        )
        sock.close()

    assert status_of(answer) == 429
    assert b"Retry-After: 3600" in answer or b"retry-after: 3600" in answer


def test_form_posts_beyond_the_concurrency_cap_get_a_503_page_before_their_body(
    intake_processes: IntakeProcesses, settings: Settings, store: Store
) -> None:
    web = start_web(intake_processes, settings, webform_max_concurrent_posts=1)
    with httpx.Client(base_url=web.url, timeout=30) as client:
        token = fresh_form(client)
        cookies = f"Cookie: {cookie_header(client)}\r\n"
        head, content_type = form_head(token, file_size=400_000)
        # The first post passes its guards and waits for the rest of its 30 MB.
        holder = connect(web)
        holder.sendall(
            (
                f"POST /fr/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {BIG}\r\n{cookies}\r\n"
            ).encode()
            + head
        )
        time.sleep(1)  # let the server take the first post's slot
        # The second sends its headers only: answered before any of its body.
        sock, answer = post_head_only(web, "/fr/", b"", content_type, extra_headers=cookies)
        sock.close()
        holder.close()
        # The slot is given back once the server sees the first client gone.
        for _ in range(20):
            accepted = client.post("/fr/", data=valid_fields(token))
            if accepted.status_code != 503:
                break
            time.sleep(0.5)

    assert status_of(answer) == 503
    assert re.search(rb"(?i)retry-after: \d+", answer)
    assert accepted.status_code == 200 and REFERENCE.search(accepted.text)


# -- S2: refused input keeps its head ------------------------------------------------
def test_refused_form_input_is_quarantined_as_its_head_under_a_quota(
    intake_processes: IntakeProcesses, settings: Settings, store: Store
) -> None:
    web = start_web(
        intake_processes,
        settings,
        quarantine_head_bytes=4096,
        quarantine_refused_quota_bytes=6000,
        webform_max_attachment_bytes=2_000_000,
    )
    bodies = []
    with httpx.Client(base_url=web.url, timeout=30) as client:
        for _ in range(2):
            token = fresh_form(client)
            body, content_type = form_head(token, file_size=1_000_000, phone="12")
            bodies.append(body)
            answer = client.post("/fr/", content=body, headers={"Content-Type": content_type})
            assert answer.status_code == 422

    first, second = quarantined_rows(store)
    assert (first.size, first.kept_bytes) == (len(bodies[0]), 4096)
    assert first.sha256 == hashlib.sha256(bodies[0]).hexdigest()
    assert store.blobs.get(first.stored_at) == bodies[0][:4096]
    # Past the quota (6000 bytes, 4096 used): the metadata only.
    assert (second.size, second.kept_bytes) == (len(bodies[1]), 0)
    assert second.sha256 == hashlib.sha256(bodies[1]).hexdigest()
    assert store.blobs.get(second.stored_at) == b""
    assert store.quarantine.refused_heads() == (4096, 1)

    shown = intake_processes.run("quarantine", "show", "--raw", first.id, env=web.env)
    assert shown.popen.returncode == 0
    assert shown.stdout_path.read_bytes() == bodies[0][:4096]
    replayed = intake_processes.run("quarantine", "reprocess", first.id, env=web.env)
    assert replayed.popen.returncode != 0
    assert "cannot be reprocessed" in replayed.stderr()


# -- S11: letters answer 401 before their body ------------------------------------
@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/letters", ""),
        ("/v1/letters", "Authorization: Bearer not-a-key\r\n"),
        ("/letters/upload", "Cookie: intake_staff=forged\r\nX-CSRF-Token: x\r\n"),
    ],
)
def test_a_letter_upload_without_credentials_is_refused_before_its_body(
    intake_processes: IntakeProcesses, settings: Settings, path: str, headers: str
) -> None:
    web = start_web(intake_processes, settings)
    content_type = "multipart/form-data; boundary=x"

    # Headers only, 30 MB declared: the answer comes before any byte of the body.
    sock, answer = post_head_only(web, path, b"", content_type, extra_headers=headers)
    sock.close()

    assert status_of(answer) == 401


def test_a_letter_upload_with_a_key_lacking_the_letters_scope_is_refused_before_its_body(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    web = start_web(intake_processes, settings)
    created = intake_processes.run(
        "api-key", "create", "crm", "--scope", "complaints:write", env=web.env
    )
    assert created.popen.returncode == 0, created.describe()
    key = created.stdout().strip()

    sock, answer = post_head_only(
        web,
        "/v1/letters",
        b"",
        "multipart/form-data; boundary=x",
        extra_headers=f"Authorization: Bearer {key}\r\n",
    )
    sock.close()

    assert status_of(answer) == 403
    assert b"letters:write" in answer


# -- S18: slow headers -----------------------------------------------------------
def test_a_connection_sending_its_headers_slowly_is_closed(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    web = start_web(intake_processes, settings, http_header_timeout=2)
    sock = connect(web)
    sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    closed = False
    for index in range(15):  # one header line a second, never the blank line
        time.sleep(1)
        try:
            sock.sendall(f"X-Slow-{index}: x\r\n".encode())
            sock.settimeout(0.05)
            closed = sock.recv(1024) == b""
        except TimeoutError:
            continue
        except OSError:
            closed = True
        if closed:
            break
    sock.close()

    assert closed, "the server kept a connection whose headers never ended"
    with httpx.Client(base_url=web.url) as client:
        assert client.get("/healthz").status_code == 200


def test_a_connection_that_sends_nothing_is_closed(
    intake_processes: IntakeProcesses, settings: Settings
) -> None:
    web = start_web(intake_processes, settings, http_header_timeout=2)
    sock = connect(web)
    sock.settimeout(15)

    assert sock.recv(1024) == b""  # closed by the server, not by our timeout
    sock.close()


# -- S20: a carrier NAT ------------------------------------------------------------
def solve(token: str, bits: int) -> str:
    answer = 0
    while True:
        digest = int.from_bytes(hashlib.sha256(f"{token}:{answer}".encode()).digest(), "big")
        if digest >> (256 - bits) == 0:
            return str(answer)
        answer += 1


def test_past_the_address_limits_a_browser_that_did_the_work_still_gets_through(
    intake_processes: IntakeProcesses, settings: Settings, store: Store
) -> None:
    web = start_web(
        intake_processes,
        settings,
        webform_max_posts_per_hour=1,
        webform_max_per_hour=1,
        webform_pow_bits=8,
    )
    with httpx.Client(base_url=web.url, timeout=30) as abuser:
        token = fresh_form(abuser)
        assert abuser.post("/fr/", data=valid_fields(token)).status_code == 200
    # Another customer behind the same address.
    with httpx.Client(base_url=web.url, timeout=30) as customer:
        token = fresh_form(customer)
        refused = customer.post("/fr/", data=valid_fields(token, text="Ma carte est bloquée."))
        assert refused.status_code == 429
        bits = POW_BITS.search(refused.text)
        assert bits and int(bits.group(1)) == 8  # the page asks its script for the work
        new_token = TOKEN.search(refused.text)
        assert new_token
        wrong = customer.post("/fr/", data={**valid_fields(new_token.group(1)), "pow": "1" * 20})
        worked = customer.post(
            "/fr/",
            data={
                **valid_fields(new_token.group(1), text="Ma carte est bloquée."),
                "pow": solve(new_token.group(1), 8),
            },
        )

    assert wrong.status_code == 429
    assert worked.status_code == 200 and REFERENCE.search(worked.text)
    assert complaints(store) == 2


def worked_fields(token: str, bits: int, **overrides: str) -> dict[str, str]:
    return {**valid_fields(token, **overrides), "pow": solve(token, bits)}


def test_past_its_inspection_budget_a_browser_that_did_the_work_gets_its_files_checked(
    intake_processes: IntakeProcesses, settings: Settings, store: Store
) -> None:
    """(A) The checks of a post with a valid proof are charged to its token, not the address."""
    web = start_web(
        intake_processes,
        settings,
        webform_inspection_seconds_per_hour=0.001,
        webform_pow_bits=8,
    )
    pdf = scans.text_pdf(scans.FRENCH_LETTER)
    text = "Voici le reçu du transfert jamais arrivé à Agadir."
    with httpx.Client(base_url=web.url, timeout=60) as first:
        token = fresh_form(first)
        files = [("attachments", ("recu-1.pdf", pdf, "application/pdf"))]
        spent = first.post("/fr/", data=valid_fields(token), files=files)
    # Another customer behind the same address: its budget of checks is spent.
    with httpx.Client(base_url=web.url, timeout=60) as customer:
        token = fresh_form(customer)
        files = [("attachments", ("recu-2.pdf", pdf, "application/pdf"))]
        refused = customer.post("/fr/", data=valid_fields(token, text=text), files=files)
        bits = POW_BITS.search(refused.text)
        new_token = TOKEN.search(refused.text)
        assert new_token
        worked = customer.post(
            "/fr/", data=worked_fields(new_token.group(1), 8, text=text), files=files
        )

    assert spent.status_code == 200, spent.text
    assert refused.status_code == 429 and bits and int(bits.group(1)) == 8
    assert worked.status_code == 200, worked.text
    assert REFERENCE.search(worked.text)
    assert complaints(store) == 2


def test_one_address_opens_only_so_many_token_budgets_an_hour(
    intake_processes: IntakeProcesses, settings: Settings, store: Store
) -> None:
    """(B) A script getting a new cookie and proof per post is stopped after the allowance."""
    web = start_web(
        intake_processes,
        settings,
        webform_max_posts_per_hour=1,
        webform_max_per_hour=1,
        webform_pow_bits=8,
        webform_max_tokens_per_address=2,
    )
    with httpx.Client(base_url=web.url, timeout=30) as client:
        token = fresh_form(client)
        assert client.post("/fr/", data=valid_fields(token)).status_code == 200
    answers = []
    for index in range(3):  # a new cookie nonce each time: a new token budget
        with httpx.Client(base_url=web.url, timeout=30) as script:
            token = fresh_form(script)
            text = f"Réclamation numéro {index} : mon transfert n'est pas arrivé."
            answers.append(script.post("/fr/", data=worked_fields(token, 8, text=text)))
            if index == 0:
                # A budget already opened stays open: the same cookie, a new token.
                again = fresh_form(script)
                reused = script.post("/fr/", data=worked_fields(again, 8, phone="12"))

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert not POW_BITS.search(answers[2].text)  # more work would not help: not asked
    assert reused.status_code == 422
    assert complaints(store) == 3


def trickle(sock: socket.socket, data: bytes, interval: float, limit: float) -> bytes:
    """Send ``data`` a byte every ``interval`` (then nothing) until the server answers."""
    sock.settimeout(interval)
    deadline = time.monotonic() + limit
    for byte in data:
        if time.monotonic() > deadline:
            break
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(1, socket.MSG_PEEK):
                break
        except TimeoutError:
            continue
        except OSError:
            break
    sock.settimeout(max(deadline - time.monotonic(), 1))
    return read_answer(sock)


@pytest.mark.parametrize("phase", ["head", "rest"])
def test_a_form_post_whose_body_does_not_come_in_time_is_answered_408_and_frees_its_slot(
    intake_processes: IntakeProcesses, settings: Settings, store: Store, phase: str
) -> None:
    """(C) Headers, then a trickled head (or a whole head, then nothing): 408, closed."""
    web = start_web(
        intake_processes,
        settings,
        webform_max_concurrent_posts=1,
        webform_body_timeout=1.0,
    )
    with httpx.Client(base_url=web.url, timeout=30) as client:
        token = fresh_form(client)
        head, content_type = form_head(token, file_size=400_000)
        slow = connect(web)
        slow.sendall(
            (
                f"POST /fr/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {BIG}\r\nCookie: {cookie_header(client)}\r\n\r\n"
            ).encode()
        )
        if phase == "head":
            answer = trickle(slow, head, interval=0.2, limit=20)
        else:
            slow.sendall(head)  # past the guards, then the rest never comes
            slow.settimeout(20)
            answer = read_answer(slow)
        slow.settimeout(20)
        try:
            closed = slow.recv(1024) == b""
        except ConnectionResetError:
            closed = True
        # The slot is free while the slow client still holds its socket.
        accepted = client.post("/fr/", data=valid_fields(token))
        slow.close()

    assert status_of(answer) == 408
    assert re.search(rb"(?i)connection: close", answer)
    assert closed, "the server kept the slow post's connection"
    assert accepted.status_code == 200 and REFERENCE.search(accepted.text)
