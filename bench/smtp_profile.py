"""Profile: ``intake smtp serve`` under the SMTP benchmark's load, sampled by py-spy.

    .venv/bin/python bench/smtp_profile.py [--messages 1500] [--clients 8]

Starts the receiver under ``py-spy record`` (200 samples a second, every
thread), sends the benchmark's mails (``bench/smtp_bench.py``), then prints
the functions where the busy samples of the serving were (start-up, threads
waiting on a condition, an idle pool or the selector are left out): self,
and inclusive for the product's own functions.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import smtp_bench

IDLE = (
    "_worker (concurrent/futures/thread.py:81)",
    "Condition.wait (threading.py:327)",
    "EpollSelector.select (selectors.py:468)",
)


# A sample is of the serving when it is in the event loop, a worker thread or the writer.
GIL: list[str] = []
SERVING = (
    "BaseEventLoop.run_forever",
    "_worker (concurrent/futures/thread.py",
    "CaptureQueue._write",
)


def busy_top(raw: Path, limit: int) -> str:
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    busy = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if frames[-1] in IDLE:
            continue
        if not any(frame.startswith(SERVING) for frame in frames):
            continue  # start-up (imports, the language model), not the serving
        busy += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            within[frame] += int(count)
    lines = [f"busy samples: {busy}", "self:"]
    lines += [f"  {n / busy:6.1%}  {name}" for name, n in own.most_common(limit)]
    lines.append("inclusive, the product's own functions:")
    ours = Counter({name: n for name, n in within.items() if _ours(name)})
    lines += [f"  {n / busy:6.1%}  {name}" for name, n in ours.most_common(limit)]
    return "\n".join(lines)


def _ours(frame: str) -> bool:
    return any(f"({folder}/" in frame for folder in ("gateway", "channels", "normalizer"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (CPU, not I/O)"
    )
    args = parser.parse_args()
    if args.gil:
        GIL.append("--gil")
    spy = str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as folder:
        port = smtp_bench.free_port()
        raw = Path(folder) / "smtp.raw"
        env = smtp_bench.receiver_env(folder, port, args.clients, args.messages)
        command = [spy, "record", "-r", "200", "-f", "raw", "-o", str(raw), "--threads", *GIL, "--"]
        process = subprocess.Popen([*command, smtp_bench.INTAKE, "smtp", "serve"], env=env)
        smtp_bench.wait_for(port, process)
        rate, p50, p99 = smtp_bench.measure(port, args.messages, args.clients)
        process.send_signal(signal.SIGINT)
        process.wait(60)
        print(f"{rate:,.0f} msg/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms under py-spy")
        print(busy_top(raw, args.top))


if __name__ == "__main__":
    main()
