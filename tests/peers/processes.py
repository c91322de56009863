"""Run the ``intake`` command as a real subprocess, the way an operator or a Procfile does.

``IntakeProcesses`` starts commands with an ``INTAKE_*`` environment, keeps
their output in files (so a failing test can show it), and kills whatever is
still running when the test ends. ``wait_until`` is the only way tests wait:
poll a condition, fail with a message after a generous deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

from config.settings import Settings
from tests.peers.services import port_open

INTAKE = str(Path(sys.executable).with_name("intake"))
DEFAULT_DEADLINE = 30.0
T = TypeVar("T")


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(
    condition: Callable[[], T],
    what: str,
    *,
    timeout: float = DEFAULT_DEADLINE,
    interval: float = 0.05,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def intake_env(**settings: object) -> dict[str, str]:
    """The parent environment without its ``INTAKE_*``, plus ``INTAKE_<KEY>`` for each setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env["PYTHONUNBUFFERED"] = "1"
    for key, value in settings.items():
        env[f"INTAKE_{key.upper()}"] = str(value)
    return env


@dataclass
class IntakeProcess:
    args: tuple[str, ...]
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def json_lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stdout().splitlines() if line.strip()]

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float = DEFAULT_DEADLINE) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"intake {' '.join(self.args)} still running after {timeout:.0f} s\n"
                f"stderr:\n{self.stderr()[-3000:]}"
            ) from None

    def signal(self, signum: int) -> None:
        if self.running():
            self.popen.send_signal(signum)

    def kill(self) -> None:
        if self.running():
            self.popen.kill()
            self.popen.wait(10)

    def describe(self) -> str:
        code = self.popen.poll()
        return (
            f"intake {' '.join(self.args)} (exit {code})\n"
            f"stdout:\n{self.stdout()[-2000:]}\nstderr:\n{self.stderr()[-3000:]}"
        )


@dataclass
class IntakeProcesses:
    """Start ``intake`` subprocesses in ``workdir``; ``stop_all`` kills the survivors."""

    workdir: Path
    env: Mapping[str, str]
    started: list[IntakeProcess] = field(default_factory=list)

    def start(self, *args: str, env: Mapping[str, str] | None = None) -> IntakeProcess:
        index = len(self.started)
        # File names from the arguments, minus what a path may not hold.
        name = re.sub(r"[^\w.-]+", "_", "-".join(arg.strip("-") for arg in args))[:40]
        stdout_path = self.workdir / f"{index:02d}-{name}.out"
        stderr_path = self.workdir / f"{index:02d}-{name}.err"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            popen = subprocess.Popen(
                [INTAKE, *args],
                env=dict(env or self.env),
                cwd=self.workdir,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        process = IntakeProcess(args, popen, stdout_path, stderr_path)
        self.started.append(process)
        return process

    def run(
        self, *args: str, timeout: float = 60.0, env: Mapping[str, str] | None = None
    ) -> IntakeProcess:
        """Start a command and wait for it to exit."""
        process = self.start(*args, env=env)
        process.wait(timeout)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.running():
                process.signal(signal.SIGTERM)
        for process in self.started:
            if process.running():
                try:
                    process.popen.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()


def wait_for_port(
    port: int, process: IntakeProcess | None = None, *, timeout: float = 30.0
) -> None:
    """Wait until something listens on ``port``; fail early if ``process`` died."""

    def ready() -> bool:
        if process is not None and not process.running():
            raise AssertionError(f"process exited before listening:\n{process.describe()}")
        return port_open("127.0.0.1", port, timeout=0.2)

    wait_until(ready, f"a listener on port {port}", timeout=timeout)


def env_for(settings: Settings, **extra: object) -> dict[str, str]:
    """The ``INTAKE_*`` environment that makes a subprocess read the same ``settings``.

    Only the values the test chose are exported; the rest stay at their defaults.
    """
    values: dict[str, object] = {}
    for key in sorted(settings.model_fields_set):
        value = getattr(settings, key)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = value.resolve()
        elif isinstance(value, bool):
            value = str(value).lower()
        elif value is None:
            value = ""  # "off" for optional settings such as INTAKE_SMTP_PORT
        values[key] = value
    values.update(extra)
    return intake_env(**values)
