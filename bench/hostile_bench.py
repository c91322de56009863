"""Benchmark: what hostile posts cost the web process and the SMTP receiver (S1, S3, S10).

    .venv/bin/python bench/hostile_bench.py [--before REF] [--json]

Runs the gateway's own processes (``intake web``, ``intake smtp serve``) on a
fresh embedded store, first from a ``git worktree`` of ``REF`` (the code
before the fixes, default 23a7790: the yardstick), then from this checkout,
and sends each the same:

1. **Form flood (S1)**: 4 concurrent anonymous posts of about 47 MB each
   (five 9.4 MB files, no form token) to ``/fr/``. Reports the web
   process's resident memory before, its peak (``VmHWM``) after, the answers
   and the CPU seconds the process spent.
2. **Attachment checks (S3)**: one post with a valid form token and five
   crafted 9.5 MB PDFs of 150,000 small objects each. Reports the answer,
   the wall time and the CPU seconds of the process and its children (the
   inspection sandboxes).
3. **SMTP DATA (S10)**: 4 concurrent sessions each sending a 24 MB message.
   Reports the receiver's resident memory before and its peak after.

Memory is read from ``/proc`` (the process idle, then its peak); CPU from
``/proc/PID/stat`` (children counted once they are waited for).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import secrets
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = re.compile(r'name="(csrf_token|form_token)" value="([^"]+)"')
ACTION = re.compile(r'<form id="complaint-form"[^>]*action="([^"]*)"')
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def cpu_seconds(pid: int) -> float:
    """User + system time of the process and of its children it waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime + cutime + cstime) / TICKS


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the process exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {port}")


def start(source: Path, data_dir: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    environment.update({"INTAKE_DATA_DIR": str(data_dir), "INTAKE_LOG_LEVEL": "WARNING"})
    environment.update({f"INTAKE_{key.upper()}": value for key, value in env.items()})
    # ``python -m`` puts the working directory first on the path: the code of ``source``.
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=source,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / f"{args[0]}.log", "wb"),
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- the hostile inputs --------------------------------------------------------------
def many_object_pdf(objects: int = 150_000, pad: int = 14) -> bytes:
    """A valid one-page PDF with ``objects`` small dictionaries nobody refers to."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets: list[int] = []

    def obj(body: bytes) -> None:
        offsets.append(out.tell())
        out.write(f"{len(offsets)} 0 obj\n".encode() + body + b"\nendobj\n")

    obj(b"<< /Type /Catalog /Pages 2 0 R >>")
    obj(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    obj(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>")
    filler = b"(" + b"x" * pad + b")"
    for _ in range(objects):
        obj(b"<< /F " + filler + b" >>")
    xref = out.tell()
    out.write(f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(
        f"trailer\n<< /Size {len(offsets) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def flood_form(base: str, posts: int, file_bytes: int) -> list[str]:
    answers: list[str] = []
    blob = secrets.token_bytes(file_bytes)

    def one() -> None:
        files = [("attachments", (f"scan{i}.pdf", blob, "application/pdf")) for i in range(5)]
        try:
            with httpx.Client(base_url=base, timeout=120) as client:
                answer = client.post("/fr/", data={"text": "x"}, files=files)
                answers.append(str(answer.status_code))
        except httpx.HTTPError as error:
            answers.append(type(error).__name__)

    threads = [threading.Thread(target=one) for _ in range(posts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(answers)


def post_crafted_pdfs(base: str, pdf: bytes) -> tuple[str, float]:
    with httpx.Client(base_url=base, timeout=300) as client:
        page = client.get("/", follow_redirects=True)
        found, action = TOKEN.search(page.text), ACTION.search(page.text)
        if found is None:
            raise RuntimeError("no form token on the page")
        fields = {
            found.group(1): found.group(2),
            "phone": "0661234567",
            "text": "Mon transfert n'est pas arrivé, voici les reçus.",
            "preferred_contact": "sms",
        }
        files = [("attachments", (f"recu{i}.pdf", pdf, "application/pdf")) for i in range(5)]
        target = action.group(1).replace("&amp;", "&") if action else "/fr/"
        started = time.perf_counter()
        answer = client.post(target, data=fields, files=files)
        return str(answer.status_code), time.perf_counter() - started


def flood_smtp(port: int, sessions: int, size: int) -> list[str]:
    answers: list[str] = []
    body = ("Bonjour, voici ma reclamation.\n" + "x" * 76 + "\n") * (size // 108)

    def one(n: int) -> None:
        message = EmailMessage()
        message["From"] = f"client{n}@example.net"
        message["To"] = "contact@cashplus.ma"
        message["Subject"] = "Réclamation"
        message.set_content(body)
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as smtp:
                smtp.send_message(message)
            answers.append("250")
        except smtplib.SMTPException as error:
            answers.append(type(error).__name__ + str(getattr(error, "smtp_code", "")))
        except OSError as error:
            answers.append(type(error).__name__)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(answers)


# -- the three scenarios -----------------------------------------------------------
def scenario_form_flood(source: Path, work: Path) -> dict[str, Any]:
    port = free_port()
    web = start(source, work / "flood", "web", http_port=str(port))
    try:
        wait_port(port, web)
        time.sleep(1)
        before_rss, before_cpu = memory_kib(web.pid, "VmRSS"), cpu_seconds(web.pid)
        answers = flood_form(f"http://127.0.0.1:{port}", posts=4, file_bytes=9_400_000)
        time.sleep(1)
        return {
            "answers": answers,
            "rss_before_mib": before_rss / 1024,
            "peak_mib": memory_kib(web.pid, "VmHWM") / 1024,
            "cpu_s": cpu_seconds(web.pid) - before_cpu,
        }
    finally:
        stop(web)


def scenario_crafted_pdfs(source: Path, work: Path) -> dict[str, Any]:
    port = free_port()
    web = start(source, work / "pdfs", "web", http_port=str(port))
    pdf = many_object_pdf()
    try:
        wait_port(port, web)
        time.sleep(1)
        before = cpu_seconds(web.pid)
        answer, wall = post_crafted_pdfs(f"http://127.0.0.1:{port}", pdf)
        time.sleep(1)
        return {
            "answer": answer,
            "pdf_mib": len(pdf) / 2**20,
            "wall_s": wall,
            "cpu_s": cpu_seconds(web.pid) - before,
        }
    finally:
        stop(web)


def scenario_smtp(source: Path, work: Path) -> dict[str, Any]:
    port = free_port()
    smtp = start(
        source,
        work / "smtp",
        "smtp",
        "serve",
        smtp_port=str(port),
        # One sender, one address: no hourly budgets (S2) in this benchmark.
        smtp_max_messages_per_sender_per_hour="0",
        smtp_max_messages_per_client_per_hour="0",
    )
    try:
        wait_port(port, smtp)
        time.sleep(1)
        before_rss = memory_kib(smtp.pid, "VmRSS")
        answers = flood_smtp(port, sessions=4, size=24_000_000)
        time.sleep(1)
        return {
            "answers": answers,
            "rss_before_mib": before_rss / 1024,
            "peak_mib": memory_kib(smtp.pid, "VmHWM") / 1024,
        }
    finally:
        stop(smtp)


def measure(source: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as folder:
        work = Path(folder)
        for name in ("flood", "pdfs", "smtp"):
            (work / name).mkdir()
        results: dict[str, Any] = {}
        for name, scenario in (
            ("form_flood", scenario_form_flood),
            ("crafted_pdfs", scenario_crafted_pdfs),
            ("smtp_data", scenario_smtp),
        ):
            print(f"{source}: {name}...", file=sys.stderr, flush=True)
            results[name] = scenario(source, work)
        return results


def at_commit(ref: str, folder: Path) -> Path:
    """A worktree of ``ref`` under ``folder`` (removed by the caller's ``remove_worktree``)."""
    tree = folder / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), ref],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return tree


def remove_worktree(tree: Path) -> None:
    subprocess.run(
        ["git", "worktree", "remove", "--force", str(tree)],
        cwd=ROOT,
        check=False,
        capture_output=True,
    )


def table(results: dict[str, Any]) -> str:
    lines = ["| scenario | code | answers | memory: idle -> peak | CPU |", "|---|---|---|---|---|"]
    for side in ("before", "after"):
        flood, pdfs, smtp = (
            results[side][key] for key in ("form_flood", "crafted_pdfs", "smtp_data")
        )
        label = f"{side} ({results[side + '_ref']})"
        lines += [
            f"| 4 x 47 MB anonymous form posts (S1) | {label} | {' '.join(flood['answers'])} | "
            f"{flood['rss_before_mib']:.0f} -> {flood['peak_mib']:.0f} MiB | "
            f"{flood['cpu_s']:.1f} s |",
            f"| 5 crafted PDFs of {pdfs['pdf_mib']:.1f} MB in one post (S3) | {label} | "
            f"{pdfs['answer']} in {pdfs['wall_s']:.1f} s | - | {pdfs['cpu_s']:.1f} s |",
            f"| 4 x 24 MB SMTP messages at once (S10) | {label} | {' '.join(smtp['answers'])} | "
            f"{smtp['rss_before_mib']:.0f} -> {smtp['peak_mib']:.0f} MiB | - |",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="23a7790", help="the commit measured as the yardstick")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="hostile-before-") as folder:
        tree = at_commit(args.before, Path(folder))
        try:
            before = measure(tree)
        finally:
            remove_worktree(tree)
    after = measure(ROOT)
    results = {"before": before, "after": after, "before_ref": args.before, "after_ref": head}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
