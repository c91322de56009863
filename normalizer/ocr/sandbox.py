"""Run a program on untrusted input with a wall-clock timeout and a memory cap.

The child gets its own session (so a timeout kills it and everything it
started), ``RLIMIT_AS`` (address space) and ``RLIMIT_CPU``, and one OpenMP
thread: tesseract's threads fight each other on a small machine, and the
OCR worker gets its parallelism from running several jobs at once.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from normalizer.errors import OurFailure

# The exit code of a sandboxed child whose own code failed (sysexits' EX_SOFTWARE).
INTERNAL_ERROR = 70


class SandboxError(OurFailure):
    """The child did not finish normally; ``code`` says how."""

    def __init__(self, code: str, detail: str, returncode: int | None = None) -> None:
        super().__init__(detail)
        self.code = code  # "timeout", "memory", "failed"
        self.detail = detail
        self.returncode = returncode


@dataclass(frozen=True)
class Limits:
    timeout: float
    memory_mb: int
    # time.monotonic() by which every call sharing these limits must be done
    # (one page's budget, spent over its OSD and recognition calls); None: each
    # call gets the whole ``timeout``.
    deadline: float | None = None

    def until(self, deadline: float) -> Limits:
        """The same limits, with calls cut short at ``deadline``."""
        return replace(self, deadline=deadline)

    def seconds_left(self) -> float:
        """What the next call may take: ``timeout``, or less when the deadline is nearer."""
        if self.deadline is None:
            return self.timeout
        return min(self.timeout, self.deadline - time.monotonic())


def _limiter(memory_mb: int, cpu_seconds: int) -> Callable[[], None]:
    def apply() -> None:
        size = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"})
    env.update(extra or {})
    return env


def run_limited(
    args: Sequence[str],
    limits: Limits,
    *,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Run ``args``; return stdout, or raise ``SandboxError`` (timeout, memory, exit != 0)."""
    return run_limited_output(args, limits, stdin=stdin, cwd=cwd, env=env)[0]


def run_limited_output(
    args: Sequence[str],
    limits: Limits,
    *,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """``run_limited``, also returning what the program wrote on stderr (its warnings)."""
    seconds = limits.seconds_left()
    if seconds <= 0:
        raise SandboxError("timeout", f"{args[0]} not started: its time was spent")
    # The program is ours (tesseract, poppler, our job); only its input is untrusted.
    process = subprocess.Popen(  # noqa: S603
        list(args),
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=child_env(env),
        start_new_session=True,
        preexec_fn=_limiter(limits.memory_mb, int(seconds) + 1),  # noqa: PLW1509
    )
    try:
        out, err = process.communicate(stdin, timeout=seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise SandboxError("timeout", f"{args[0]} took longer than {seconds:.3g} s") from None
    if process.returncode != 0:
        detail = err.decode("utf-8", "replace").strip()[-500:]
        if process.returncode in (-signal.SIGKILL, -signal.SIGXCPU) or "MemoryError" in detail:
            raise SandboxError("memory", f"{args[0]} ran out of its limits: {detail}")
        if "bad_alloc" in detail or "Cannot allocate" in detail or "out of memory" in detail:
            raise SandboxError("memory", f"{args[0]} ran out of memory")
        raise SandboxError(
            "failed", f"{args[0]} exited {process.returncode}: {detail}", process.returncode
        )
    return out, err


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
