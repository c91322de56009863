"""The soak's load and its counters: four kinds of input, a consumer, the gateway's figures.

Used by ``bench/soak.py``: each sender takes a number and sends one distinct
input of its kind (an e-mail over SMTP, a signed Twilio SMS webhook, a web
form post, a letter through ``POST /v1/letters``), answering whether the
gateway accepted it; ``drive`` keeps one kind at a fixed rate; ``Consumer``
drains the inbound queue; ``store_counts`` and ``rss_mb`` read what the
gateway did and what it costs.
"""

from __future__ import annotations

import json
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx

TOKEN = "soak-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "c" * 32
PUBLIC = "https://intake.cashplus.example"
KINDS = ("email", "sms", "webform", "letter")
TEXTS = (
    "Bonjour, mon transfert de {n} DH vers Agadir n'est pas arrivé depuis trois jours.",
    "salam, la carte dyali tblokat f guichet nhar {n}, 3afak chof lia had lmochkil",
    "السلام عليكم، لم أتوصل بالحوالة رقم {n} منذ أسبوع، المرجو التحقق.",
    "Hello, my transfer number {n} has not arrived, please check.",
)


# -- what the load threads count -----------------------------------------------
@dataclass
class Tally:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, since the last sample
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, ok: bool, seconds: float) -> None:
        with self.lock:
            self.sent += 1
            self.ok += ok
            self.failed += not ok
            self.latencies.append(seconds)

    def take_latencies(self) -> list[float]:
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    base: str
    smtp_port: int
    api_key: str
    database: str  # SQLite path or PostgreSQL URL
    env: dict[str, str]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the four kinds of input ----------------------------------------------------
def mail(n: int) -> bytes:
    text = TEXTS[n % len(TEXTS)].format(n=n)
    return (
        f"From: Client {n} <client{n}@example.ma>\r\nTo: Cash Plus <contact@cashplus.ma>\r\n"
        f"Subject: Réclamation {n}\r\nDate: Mon, 03 Jun 2024 10:15:00 +0100\r\n"
        f"Message-ID: <soak-{n}-{uuid.uuid4().hex}@example.ma>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{text}\r\n"
    ).encode()


def email_sender(gateway: Gateway) -> Callable[[int], bool]:
    local = threading.local()

    def send(n: int) -> bool:
        try:
            if getattr(local, "smtp", None) is None:
                local.smtp = smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=60)
            refused = local.smtp.sendmail(f"client{n}@example.ma", ["contact@cashplus.ma"], mail(n))
            return not refused
        except (smtplib.SMTPException, OSError):
            with suppress(Exception):
                local.smtp.close()
            local.smtp = None
            return False

    return send


def sms_sender(gateway: Gateway) -> Callable[[int], bool]:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TOKEN)
    client = httpx.Client(base_url=gateway.base, timeout=60)

    def send(n: int) -> bool:
        params = {
            "AccountSid": ACCOUNT,
            "MessageSid": "SM" + uuid.uuid4().hex,
            "From": f"+2126612{n % 100000:05d}",
            "To": "+212520020915",
            "Body": TEXTS[n % len(TEXTS)].format(n=n),
            "NumMedia": "0",
            "NumSegments": "1",
        }
        signature = validator.compute_signature(PUBLIC + "/twilio/messaging", params)
        headers = {
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        answer = client.post("/twilio/messaging", content=urlencode(params), headers=headers)
        return answer.status_code == 200

    return send


def webform_sender(gateway: Gateway) -> Callable[[int], bool]:
    import re

    pattern = re.compile(r'name="csrf_token" value="([^"]+)"')
    local = threading.local()

    def send(n: int) -> bool:
        if getattr(local, "client", None) is None:
            local.client = httpx.Client(base_url=gateway.base, timeout=60)
            page = local.client.get("/")
            found = pattern.search(page.text)
            local.token = found.group(1) if found else ""
            # The cookies are Secure (the public URL is https): httpx would not send them
            # back over plain HTTP, a browser behind the TLS proxy would.
            cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
            local.client.headers["Cookie"] = cookie
        fields = {
            "csrf_token": local.token,
            "phone": "0661234567",
            "text": TEXTS[n % len(TEXTS)].format(n=n),
        }
        answer = local.client.post("/fr/", data=fields, files={"attachments": ("", b"")})
        if answer.status_code != 200:
            print(f"web form answered {answer.status_code}", file=sys.stderr)
            local.client = None  # a fresh session and token next time
        return answer.status_code == 200

    return send


def letter_sender(gateway: Gateway) -> Callable[[int], bool]:
    from tests.peers import scans

    client = httpx.Client(
        base_url=gateway.base, timeout=120, headers={"Authorization": f"Bearer {gateway.api_key}"}
    )
    page = scans.encode(scans.render_page(scans.FRENCH_LETTER, angle=1.5, noise=0.005), "png")

    def send(n: int) -> bool:
        if n % 10 == 9:
            # A scan to OCR; a trailing comment makes each upload distinct (dedup is by sha256).
            name, data = f"scan-{n}.png", page + f"soak {n}".encode()
        else:
            lines = (f"Lettre {n}", *scans.FRENCH_LETTER)
            name, data = f"lettre-{n}.pdf", scans.text_pdf(lines)
        answer = client.post("/v1/letters", files={"files": (name, data)})
        return answer.status_code in (200, 202)

    return send


SENDERS: dict[str, Callable[[Gateway], Callable[[int], bool]]] = {
    "email": email_sender,
    "sms": sms_sender,
    "webform": webform_sender,
    "letter": letter_sender,
}


def drive(
    kind: str, gateway: Gateway, rate: float, tally: Tally, stop: threading.Event, threads: int
) -> list[threading.Thread]:
    """``threads`` senders sharing one schedule of ``rate`` inputs per second."""
    send = SENDERS[kind](gateway)
    counter = iter(range(10**9))
    lock = threading.Lock()
    start = time.monotonic()

    def loop() -> None:
        while not stop.is_set():
            with lock:
                n = next(counter)
            due = start + n / rate
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            began = time.perf_counter()
            try:
                ok = send(n)
            except httpx.HTTPError:
                ok = False
            tally.record(ok, time.perf_counter() - began)

    workers = [
        threading.Thread(target=loop, name=f"soak-{kind}-{i}", daemon=True) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    return workers


# -- what the gateway did ----------------------------------------------------------
def store_counts(database: str) -> tuple[dict[str, int], int]:
    """(complaints per channel, outbox rows published)."""
    by_channel = "SELECT channel, count(*) FROM complaints GROUP BY channel"
    published = "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL"
    if database.startswith("postgresql"):
        import psycopg

        with psycopg.connect(database) as connection:
            rows = connection.execute(by_channel).fetchall()
            (count,) = connection.execute(published).fetchone() or (0,)
    else:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
            rows = connection.execute(by_channel).fetchall()
            (count,) = connection.execute(published).fetchone()
    return {str(channel): int(n) for channel, n in rows}, int(count)


def rss_mb(pid: int) -> tuple[float, float]:
    """(RSS of ``pid``, RSS of its children) in MB, from /proc."""

    def one(process: int) -> float:
        with suppress(OSError):
            for line in Path(f"/proc/{process}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    children = 0.0
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                children += one(int(child))
    return one(pid), children


class Consumer:
    """Drains the inbound queue in a thread, the way a downstream system would."""

    def __init__(self, env: dict[str, str]) -> None:
        from config.settings import load_settings

        values = {k[len("INTAKE_") :].lower(): v for k, v in env.items() if k.startswith("INTAKE_")}
        self.settings = load_settings(**values)
        self.ids: set[str] = set()
        self.deliveries = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="soak-consumer", daemon=True)

    def _run(self) -> None:
        from router.consumer import consume_messages

        def handle(body: str) -> None:
            self.deliveries += 1
            self.ids.add(str(json.loads(body).get("id")))

        while not self.stop.is_set():
            try:
                consume_messages(self.settings, handle, timeout=1.0)
            except Exception as exc:  # the gateway may not have created the queue yet
                print(f"consumer: {type(exc).__name__}: {exc}", file=sys.stderr)
                self.stop.wait(1.0)

    @property
    def count(self) -> int:
        """Distinct complaints received (a redelivery has the same id)."""
        return len(self.ids)
