"""The soak's picture: throughput, memory and latency over time (``docs/soak.png``).

The gateway's memory has a panel of its own, scaled to its range: a climb of
a few MB on a 400 MB process, the sign of a leak, is invisible on an axis
from zero shared with the OCR jobs' spikes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

KINDS = ("email", "sms", "webform", "letter")


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    minutes = [s["t"] / 60 for s in samples]
    figure, (rate, memory, children, latency) = plt.subplots(
        4, 1, figsize=(10, 12), sharex=True, height_ratios=(3, 2, 2, 3)
    )
    previous: dict[str, Any] = {"t": 0.0, "answered": dict.fromkeys(KINDS, 0), "consumed": 0}
    per_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    consumed: list[float] = []
    kept = [s for i, s in enumerate(samples) if i == 0 or s["t"] - samples[i - 1]["t"] >= 1.0]
    samples = kept  # a last sample a fraction of a second after the one before is noise
    minutes = [s["t"] / 60 for s in samples]
    for current in samples:
        span = max(current["t"] - previous["t"], 1e-6)
        for kind in KINDS:
            per_kind[kind].append((current["answered"][kind] - previous["answered"][kind]) / span)
        consumed.append((current["consumed"] - previous["consumed"]) / span)
        previous = current
    for kind in KINDS:
        rate.plot(minutes, per_kind[kind], label=f"{kind} accepted/s")
    rate.plot(minutes, consumed, label="consumed from the queue/s", color="black", linewidth=1)
    rate.set_ylabel("per second")
    rate.legend(loc="upper right", fontsize=8)
    rate.set_title(
        f"soak: intake run, {result['store']} + {result['broker']} broker, "
        f"{result['minutes']:g} min, {result['date']}"
    )
    trend = result.get("rss_trend_mb_per_hour")
    shown = "gateway RSS" + ("" if trend is None else f" (after warm-up: {trend:+.1f} MB/h)")
    memory.plot(minutes, [s["rss_mb"] for s in samples], label=shown)
    memory.set_ylabel("MB")
    memory.legend(loc="upper left", fontsize=8)
    children.plot(
        minutes,
        [s["children_rss_mb"] for s in samples],
        label="OCR children RSS",
        color="tab:orange",
    )
    children.set_ylabel("MB")
    children.set_ylim(bottom=0)
    children.legend(loc="upper left", fontsize=8)
    latency.plot(minutes, [s["p50_ms"] for s in samples], label="p50")
    latency.plot(minutes, [s["p99_ms"] for s in samples], label="p99")
    latency.set_ylabel("request latency, ms")
    latency.set_yscale("log")
    latency.set_xlabel("minutes")
    latency.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
