"""The machine a benchmark ran on, described the same way in every report.

CPU model, cores, memory, operating system, Python, and the versions of the
peers the benchmarks talk to (tesseract, RabbitMQ, PostgreSQL), plus the
load average: on a shared machine the load is part of the figure.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def _first_line(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


def _os_name() -> str:
    release = Path("/etc/os-release")
    if release.exists():
        found = re.search(r'^PRETTY_NAME="?([^"\n]+)', release.read_text(), re.MULTILINE)
        if found:
            return f"{found.group(1)}, Linux {platform.release()}"
    return platform.platform()


def _postgres() -> str:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            row = connection.execute("SHOW server_version").fetchone()
            return str(row[0]) if row else "unknown"
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"


def describe() -> dict[str, Any]:
    """What the report's "machine" line says."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "os": _os_name(),
        "python": platform.python_version(),
        "tesseract": _first_line(["tesseract", "--version"]).removeprefix("tesseract "),
        "rabbitmq": _first_line(["rabbitmqctl", "version"]),
        "postgresql": _postgres(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }
