"""Run a program on untrusted input with a wall-clock timeout and a memory cap.

The child gets its own session (so a timeout kills it and everything it
started), ``RLIMIT_AS`` (address space) and ``RLIMIT_CPU``, and one OpenMP
thread: tesseract's threads fight each other on a small machine, and the
OCR worker gets its parallelism from running several jobs at once. It never
gets the service's environment: only ``PATH``, ``LANG``, the OpenMP limits
and ``TESSDATA_PREFIX`` (``child_env``), so no secret setting reaches it.

A call that names what the program may see (``Confine``: the input files,
read-only; a work folder, writable) is also confined with bubblewrap when
the sandbox is on (``INTAKE_SANDBOX``, ``configure``): no network, an
unprivileged uid in its own user namespace, ``no_new_privs``, no
capabilities, its own pid namespace, a private ``/tmp``, and a filesystem
made of the system folders, the Python installation, this package's source
and those files only. The data folder (database, evidence blobs), the
project's other files and ``/etc`` (but for the loader's and fonts' files)
are not there at all. The OCR child (``python -m normalizer.ocr.child``) is
confined this way by its parent, and the programs it starts (poppler, qpdf,
tesseract) run inside that same sandbox (``INSIDE_MARK``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from normalizer.errors import OurFailure

log = logging.getLogger("intake.ocr.sandbox")

# The exit code of a sandboxed child whose own code failed (sysexits' EX_SOFTWARE).
INTERNAL_ERROR = 70
# INTAKE_SANDBOX: "auto" confines with bubblewrap when it works here (else
# rlimits only, with a warning at start), "bwrap" refuses to start without
# it, "none" never confines (rlimits and the bare environment only).
SANDBOX_MODES = ("auto", "bwrap", "none")
# Set in a confined child's environment: what it starts is already inside.
INSIDE_MARK = "INTAKE_SANDBOXED"
# The only variables a child gets from the service's environment.
KEPT_VARIABLES = ("PATH", "LANG", "TESSDATA_PREFIX")
# The uid and gid a confined child runs as inside its user namespace (nobody).
NOBODY = "65534"
# System folders seen read-only (a symlink, as on merged-/usr systems, is copied as one).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# What of /etc the programs need: the dynamic loader, fonts (poppler), libmagic's
# local rules, Debian's alternatives (program links), the time zone.
ETC_ENTRIES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "fonts",
    "magic",
    "magic.mime",
    "localtime",
)
# bubblewrap's own failure (it could not build the sandbox) is ours, not the file's.
PROBE_TIMEOUT = 20.0


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


def _limiter(memory_mb: int | None, cpu_seconds: int) -> Callable[[], None]:
    def apply() -> None:
        if memory_mb is not None:
            size = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


class SandboxUnavailable(OurFailure):
    """``INTAKE_SANDBOX=bwrap`` and bubblewrap does not work here: the service must not start."""


@dataclass(frozen=True)
class Confine:
    """What a confined program may see besides the system: ``reads`` read-only, ``writes``
    read-write (files or folders, each at its own path)."""

    reads: tuple[Path, ...] = ()
    writes: tuple[Path, ...] = ()


@dataclass
class _State:
    mode: str = "auto"
    # Folders hidden under an empty tmpfs should a mounted folder hold them (the data folder).
    hidden: tuple[Path, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)
    warned: bool = False


_STATE = _State()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a child: nothing of the service's but ``KEPT_VARIABLES``."""
    env = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update({"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1", "LC_ALL": "C.UTF-8"})
    if os.environ.get(INSIDE_MARK):
        env[INSIDE_MARK] = "1"
    env.update(extra or {})
    return env


def configure(mode: str, hidden: Sequence[Path] = ()) -> str:
    """Set the sandbox mode (``INTAKE_SANDBOX``); returns what confines children: bwrap or none.

    ``hidden``: folders a child must never see (the data folder); should one
    lie inside a folder the sandbox mounts, an empty tmpfs covers it.

    ``bwrap`` raises ``SandboxUnavailable`` when bubblewrap does not work
    here; ``auto`` then falls back to rlimits only and logs a warning once.
    """
    if mode not in SANDBOX_MODES:
        raise ValueError(f"sandbox mode {mode!r}: one of {', '.join(SANDBOX_MODES)}")
    with _STATE.lock:
        _STATE.mode = mode
        _STATE.hidden = tuple(Path(path).resolve() for path in hidden)
    return active_sandbox()


def active_sandbox() -> str:
    """``bwrap`` when confined children run under bubblewrap, ``none`` otherwise."""
    mode = _STATE.mode
    if mode == "none":
        return "none"
    problem = bwrap_problem()
    if problem is None:
        return "bwrap"
    if mode == "bwrap":
        raise SandboxUnavailable(f"INTAKE_SANDBOX=bwrap, but bubblewrap does not work: {problem}")
    with _STATE.lock:
        warned, _STATE.warned = _STATE.warned, True
    if not warned:
        log.warning(
            "bubblewrap does not work here (%s): files are decoded under rlimits only, "
            "with the network and the service's files within reach; install bubblewrap "
            "or allow user namespaces (INTAKE_SANDBOX=bwrap refuses to start without it)",
            problem,
        )
    return "none"


@lru_cache(maxsize=1)
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot confine a child here, or None when it can (tried once)."""
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian package bubblewrap)"
    try:
        out, _err = _run_confined(
            [sys.executable, "-c", "print('ok')"], Confine(), PROBE_TIMEOUT, None
        )
    except OSError as exc:
        return f"bwrap could not be run: {exc}"
    except SandboxError as exc:
        return exc.detail[-300:]
    return None if out.strip() == b"ok" else "the probe printed nothing"


def _bind(option: str, path: Path) -> list[str]:
    """Mount ``path`` at its own place, and at its real place if a symlink leads there."""
    args = [option, str(path), str(path)]
    real = path.resolve()
    if real != path:
        args += [option, str(real), str(real)]
    return args


def _python_paths() -> list[Path]:
    """The interpreter, its standard library and the venv, and this package's source.

    Only the ``normalizer`` package of the project: its folder may hold the
    data folder, env files and the rest, which a child must not see.
    """
    import normalizer

    paths = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix)}
    paths.add(Path(sys.executable).parent)
    paths.add(Path(normalizer.__file__).resolve().parent)
    return sorted(paths)


def _program_paths() -> list[Path]:
    """The folders on ``PATH`` (where the programs the child starts are found), read-only."""
    found = []
    for entry in child_env().get("PATH", "").split(os.pathsep):
        path = Path(entry)
        if path.is_absolute() and path != Path("/") and path.is_dir():
            found.append(path)
    return found


def bwrap_args(confine: Confine, cwd: str | None) -> list[str]:
    """The bubblewrap command line (before the program's own) for ``confine``."""
    args = [
        "bwrap",
        "--unshare-all",
        "--unshare-user",
        "--uid",
        NOBODY,
        "--gid",
        NOBODY,
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",  # noqa: S108 - a private, empty tmpfs inside the sandbox
    ]
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    for name in ETC_ENTRIES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    tessdata = os.environ.get("TESSDATA_PREFIX")
    if tessdata and Path(tessdata).is_dir():
        args += _bind("--ro-bind", Path(tessdata))
    mounted = [*_program_paths(), *_python_paths()]
    for path in mounted:
        args += _bind("--ro-bind", path)
    for path in _STATE.hidden:
        if path.is_dir() and any(path.is_relative_to(where.resolve()) for where in mounted):
            args += ["--tmpfs", str(path)]
    for path in confine.reads:
        args += _bind("--ro-bind", Path(path).absolute())
    for path in confine.writes:
        args += _bind("--bind", Path(path).absolute())
    args += ["--chdir", cwd or "/tmp", "--setenv", INSIDE_MARK, "1"]  # noqa: S108
    return args


def run_limited(
    args: Sequence[str],
    limits: Limits,
    *,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    confine: Confine | None = None,
) -> bytes:
    """Run ``args``; return stdout, or raise ``SandboxError`` (timeout, memory, exit != 0).

    With ``confine``, the program runs in the sandbox (bubblewrap) when it is
    on, seeing only what ``confine`` names besides the system.
    """
    return run_limited_output(args, limits, stdin=stdin, cwd=cwd, env=env, confine=confine)[0]


def run_limited_output(
    args: Sequence[str],
    limits: Limits,
    *,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    confine: Confine | None = None,
) -> tuple[bytes, bytes]:
    """``run_limited``, also returning what the program wrote on stderr (its warnings)."""
    seconds = limits.seconds_left()
    if seconds <= 0:
        raise SandboxError("timeout", f"{args[0]} not started: its time was spent")
    if confine is not None and not os.environ.get(INSIDE_MARK) and active_sandbox() == "bwrap":
        return _run_confined(
            args, confine, seconds, limits.memory_mb, stdin=stdin, cwd=cwd, env=env
        )
    return _run(list(args), seconds, limits.memory_mb, stdin=stdin, cwd=cwd, env=env)


def _run_confined(
    args: Sequence[str],
    confine: Confine,
    seconds: float,
    memory_mb: int | None,
    *,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[bytes, bytes]:
    """``_run`` under bubblewrap; its own failure to build the sandbox is ours (exit 70)."""
    status_read, status_write = os.pipe()
    # Each end is closed exactly once: a second close of a number another
    # thread has meanwhile been given (a socket, another sandbox's pipe) would
    # cut that one instead.
    open_ends = [status_read, status_write]

    def close_end(fd: int) -> None:
        if fd in open_ends:
            open_ends.remove(fd)
            os.close(fd)

    try:
        command = [*bwrap_args(confine, cwd), "--json-status-fd", str(status_write), *args]
        try:
            return _run(
                command,
                seconds,
                memory_mb,
                stdin=stdin,
                env=env,
                pass_fds=(status_write,),
                name=args[0],
                after_start=lambda: close_end(status_write),
            )
        except SandboxError as exc:
            if exc.code == "timeout" or _child_started(status_read):
                raise
            raise SandboxError(
                "failed", f"the sandbox did not start: {exc.detail}", INTERNAL_ERROR
            ) from None
    finally:
        for fd in list(open_ends):
            close_end(fd)


def _child_started(status_read: int) -> bool:
    """Whether bubblewrap reported starting the program (``--json-status-fd``)."""
    os.set_blocking(status_read, False)
    chunks = []
    with contextlib.suppress(BlockingIOError, OSError):
        while chunk := os.read(status_read, 4096):
            chunks.append(chunk)
    for line in b"".join(chunks).splitlines():
        with contextlib.suppress(ValueError):
            if "child-pid" in json.loads(line):
                return True
    return False


def _run(
    args: list[str],
    seconds: float,
    memory_mb: int | None,
    *,
    stdin: bytes | None = None,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    name: str | None = None,
    after_start: Callable[[], None] | None = None,
) -> tuple[bytes, bytes]:
    name = name or args[0]
    # The program is ours (tesseract, poppler, our job); only its input is untrusted.
    process = subprocess.Popen(  # noqa: S603
        args,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=child_env(env),
        start_new_session=True,
        pass_fds=pass_fds,
        preexec_fn=_limiter(memory_mb, int(seconds) + 1),  # noqa: PLW1509
    )
    if after_start is not None:
        after_start()
    try:
        out, err = process.communicate(stdin, timeout=seconds)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise SandboxError("timeout", f"{name} took longer than {seconds:.3g} s") from None
    if process.returncode != 0:
        detail = err.decode("utf-8", "replace").strip()[-500:]
        if process.returncode in (-signal.SIGKILL, -signal.SIGXCPU) or "MemoryError" in detail:
            raise SandboxError("memory", f"{name} ran out of its limits: {detail}")
        if "bad_alloc" in detail or "Cannot allocate" in detail or "out of memory" in detail:
            raise SandboxError("memory", f"{name} ran out of memory")
        raise SandboxError(
            "failed", f"{name} exited {process.returncode}: {detail}", process.returncode
        )
    return out, err


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
