"""Figures to Markdown: one renderer per benchmark, from the JSON its script printed.

Each renderer returns the values its template (``bench/templates/NAME.md``)
needs (at least ``table``) and one row of the summary table at the top of
``docs/benchmarks.md``: what was measured, the yardstick, and the ratio
with the goal the issue set. ``RENDERERS`` is the table ``bench/suite.py``
reads; a new benchmark is a script, a template and one renderer here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Figures = dict[str, Any]
Summary = tuple[str, str, str, str]  # benchmark, figure, yardstick, ratio
Rendered = tuple[dict[str, str], Summary]


def rows(*cells: tuple[str, ...]) -> str:
    return "\n".join("| " + " | ".join(row) + " |" for row in cells)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def relay(f: Figures) -> Rendered:
    ratio = f["relay_rate"] / f["bare_rate"]
    table = rows(
        (
            f"relay: {f['messages']:,} complaints from the outbox to RabbitMQ, publisher confirms "
            f"(batched, {f['batch_size']} a batch), rows marked after the confirms",
            f"{f['relay_rate']:,.0f} msg/s",
        ),
        (
            f"yardstick: bare kombu loop, `confirm_publish=True`, the same {f['messages']:,} "
            "payloads one by one",
            f"{f['bare_rate']:,.0f} msg/s",
        ),
        ("**ratio relay / bare loop** (goal ≥ 2×)", f"**{ratio:.1f}×**"),
        (
            f"API intake: {f['posts']:,} `POST /v1/complaints` over HTTP at concurrency "
            f"{f['concurrency']}, each committed before the `201`",
            f"{f['api_rate']:,.0f} complaints/s, p50 {f['api_p50_ms']:.1f} ms, "
            f"p99 {f['api_p99_ms']:.1f} ms",
        ),
    )
    summary = (
        "outbox relay to RabbitMQ",
        f"{f['relay_rate']:,.0f} msg/s",
        f"bare kombu loop {f['bare_rate']:,.0f} msg/s",
        f"{ratio:.1f}× (goal ≥ 2×)",
    )
    return {"table": table}, summary


def smtp(f: Figures) -> Rendered:
    label = f"{f['messages']:,} mails, {f['clients']} smtplib clients"
    ratio = f["intake_rate"] / f["bare_rate"]
    table = rows(
        (
            f"bare aiosmtpd, handler answers 250 ({label})",
            f"{f['bare_rate']:,.0f} msg/s",
            f"p50 {f['bare_p50_ms']:.1f} ms, p99 {f['bare_p99_ms']:.1f} ms",
        ),
        (
            f"`intake smtp serve`, 250 after the durable commit ({label})",
            f"{f['intake_rate']:,.0f} msg/s",
            f"p50 {f['intake_p50_ms']:.1f} ms, p99 {f['intake_p99_ms']:.1f} ms",
        ),
        ("**ratio intake / bare**", f"**{ratio:.2f}×**", ""),
    )
    summary = (
        "SMTP receiver",
        f"{f['intake_rate']:,.0f} mails/s",
        f"bare aiosmtpd {f['bare_rate']:,.0f}/s",
        f"{ratio:.2f}×",
    )
    return {"table": table}, summary


def imap(f: Figures) -> Rendered:
    count = f["messages"]
    ratio = f["ours_s"] / f["getmail_s"]
    each = ", ".join(f"{ours:.2f} vs {getmail:.2f}" for ours, getmail in f["runs"])
    table = rows(
        (
            "getmail6: IMAP -> Maildir (fsync, one fork per mail)",
            f"{f['getmail_s']:.2f}",
            f"{count / f['getmail_s']:.0f}",
        ),
        (
            "**`intake imap poll --once`: committed, moved, confirmed on RabbitMQ**",
            f"**{f['ours_s']:.2f}**",
            f"{count / f['ours_s']:.0f}",
        ),
        ("**ours / getmail6** (goal ≤ 0.33)", f"**{ratio:.2f}**", ""),
    )
    table += (
        f"\n\n{count:,} mails, median of {f['repeats']} runs (ours vs getmail6 per run: {each} s)."
    )
    summary = (
        "IMAP `poll --once` to RabbitMQ",
        f"{count / f['ours_s']:.0f} mails/s",
        f"getmail6 {count / f['getmail_s']:.0f}/s",
        f"time {ratio:.2f}× getmail's (goal ≤ 0.33)",
    )
    return {"table": table}, summary


def _spread_row(spread: Figures | None, load: str) -> list[tuple[str, str, str]]:
    """The same stack as several web processes on one port, when it was measured."""
    if not spread:
        return []
    return [
        (
            f"full stack, {spread['processes']:.0f} web processes on one port ({load})",
            f"{spread['rate']:,.0f} req/s",
            f"p50 {spread['p50']:.1f} ms, p99 {spread['p99']:.1f} ms",
        )
    ]


def twilio(f: Figures) -> Rendered:
    full, bare = f["full"], f["bare"]
    store = f.get("store") or "SQLite"
    load = f"wrk, {f['connections']} connections, {f['seconds']} s"
    steady = f"open loop at {f['rate']:.0f} req/s, {f['rate_seconds']:.0f} s"
    ratio = full["rate"] / bare["rate"]
    table = rows(
        (
            f"full stack ({store}), max rate ({load})",
            f"{full['rate']:,.0f} req/s",
            f"p50 {full['p50']:.1f} ms, p99 {full['p99']:.1f} ms",
        ),
        (
            f"bare endpoint, max rate ({load})",
            f"{bare['rate']:,.0f} req/s",
            f"p50 {bare['p50']:.1f} ms, p99 {bare['p99']:.1f} ms",
        ),
        ("**ratio full / bare** (goal ≥ 0.5×)", f"**{ratio:.2f}×**", ""),
        *_spread_row(f.get("spread"), load),
        (
            f"full stack ({store}), {steady}",
            "",
            f"p50 {full['rate_p50']:.1f} ms, **p99 {full['rate_p99']:.1f} ms** (goal < 50 ms)",
        ),
        (
            f"bare endpoint, {steady}",
            "",
            f"p50 {bare['rate_p50']:.1f} ms, p99 {bare['rate_p99']:.1f} ms",
        ),
    )
    extra = (
        f"Full stack: {full['complaints']:,.0f} complaints recorded for {full['sent']:,.0f} "
        f"requests sent (the difference was in flight when wrk stopped); non-2xx answers: "
        f"full {full['errors']:.0f}, bare {bare['errors']:.0f}."
    )
    summary = (
        "Twilio webhooks",
        f"{full['rate']:,.0f} req/s, p99 {full['rate_p99']:.0f} ms at {f['rate']:.0f}/s",
        f"bare endpoint {bare['rate']:,.0f} req/s",
        f"{ratio:.2f}× (goal ≥ 0.5×; p99 goal < 50 ms)",
    )
    return {"table": table, "extra": extra}, summary


def webform(f: Figures) -> Rendered:
    def text(values: dict[str, float]) -> str:
        if "p50_ms" not in values:
            return f"{values['rate']:,.1f}/s"
        return (
            f"{values['rate']:,.0f}/s, p50 {values['p50_ms']:.0f} ms, p95 {values['p95_ms']:.0f} ms"
        )

    named = f["rows"]
    table = rows(*((name, text(values)) for name, values in named.items()))
    table += (
        f"\n\n{f['posts']} POSTs of each kind at concurrency {f['concurrency']}; "
        f"{f['acks']} acknowledgements."
    )
    form, api, acks, smtp_loop = (values["rate"] for values in named.values())
    summary = (
        "web form / acknowledgements",
        f"{form:,.0f} forms/s; {acks:,.1f} acks/s",
        f"partner API {api:,.0f}/s; bare smtplib {smtp_loop:,.1f}/s",
        f"{form / api:.2f}×; {acks / smtp_loop:.2f}×",
    )
    return {"table": table}, summary


def ocr(f: Figures) -> Rendered:
    pages = f["pages"]
    lines = rows(
        *(
            (
                page["name"],
                str(page["truth_chars"] or "no truth"),
                pct(page["ours_cer"]),
                pct(page["plain_cer"]),
                f"{page['ours_s']:.1f}",
                f"{page['plain_s']:.1f}",
            )
            for page in pages
        )
    )
    ours = [p["ours_cer"] for p in pages if p["ours_cer"] is not None]
    plain = [p["plain_cer"] for p in pages if p["plain_cer"] is not None]
    mean_ours, mean_plain = sum(ours) / len(ours), sum(plain) / len(plain)
    count = len(pages)
    ours_ppm, plain_ppm = count / f["ours_wall"] * 60, count / f["plain_wall"] * 60
    table = rows(
        (
            f"pipeline, {f['workers']} jobs at a time",
            str(count),
            f"{f['ours_wall']:.1f}",
            f"{ours_ppm:.1f}",
            pct(mean_ours),
        ),
        (
            "plain `tesseract -l ara+fra+eng`, one page at a time",
            str(count),
            f"{f['plain_wall']:.1f}",
            f"{plain_ppm:.1f}",
            pct(mean_plain),
        ),
        (
            "**ratio** (goal: ≥ 2× pages/min, lower CER)",
            "",
            "",
            f"**{ours_ppm / plain_ppm:.1f}×**",
            f"**{mean_ours / mean_plain:.2f}× the plain CER**",
        ),
    )
    summary = (
        "letters OCR",
        f"{ours_ppm:.1f} pages/min, CER {pct(mean_ours)}",
        f"plain tesseract {plain_ppm:.1f} pages/min, CER {pct(mean_plain)}",
        f"{ours_ppm / plain_ppm:.1f}× (goal ≥ 2×)",
    )
    return {"table": table, "pages": lines}, summary


def langid(f: Figures) -> Rendered:
    ours, stock = f["langid"], f["langdetect"]
    label, lowest = min(ours["per_label"].items(), key=lambda item: item[1])
    speed = stock["microseconds_per_call"] / ours["microseconds_per_call"]
    table = rows(
        (
            f"macro accuracy, {len(ours['per_label'])} labels",
            pct(ours["macro"]),
            pct(stock["macro"]),
        ),
        (
            "lowest label",
            f"{label} {pct(lowest)} (goal ≥ 90%{': not met' if lowest < 0.9 else ''})",
            pct(min(stock["per_label"].values())),
        ),
        (
            "µs per call",
            f"{ours['microseconds_per_call']:,.0f}",
            f"{stock['microseconds_per_call']:,.0f} (**{speed:.1f}×** slower)",
        ),
    )
    summary = (
        "language identification",
        f"macro accuracy {pct(ours['macro'])}",
        f"stock langdetect {pct(stock['macro'])}",
        f"{speed:.1f}× faster",
    )
    return {"table": table}, summary


def soak(f: Figures) -> Rendered:
    answered, failed = f["answered"], f["failed"]
    per_kind = ", ".join(f"{kind} {answered[kind]:,} ({failed[kind]} failed)" for kind in answered)
    rss_growth = (f["rss_end_mb"] or 0) - (f["rss_start_mb"] or 0)
    offered = ", ".join(f"{kind} {rate:g}/s" for kind, rate in f["rates"].items())
    table = rows(
        ("store, broker", f"{f['store']}, {f['broker']}"),
        ("offered load", offered),
        ("inputs accepted", f"{f['accepted']:,} ({per_kind})"),
        ("throughput over the run", f"{f['throughput']:.1f} inputs/s"),
        (
            "stored / published / consumed (distinct ids)",
            f"{f['stored']:,} / {f['published']:,} / {f['consumed']:,}",
        ),
        ("lost (accepted, never consumed)", f"**{f['lost']}**"),
        ("redelivered to the consumer (same id)", f"{f.get('duplicated', 0):,}"),
        (
            "gateway RSS after warm-up → end (max)",
            f"{f['rss_start_mb']:.0f} → {f['rss_end_mb']:.0f} MB ({rss_growth:+.0f} MB; "
            f"max {f['rss_max_mb']:.0f} MB)",
        ),
        (
            "request latency p99 per sample: median / worst",
            f"{f['p99_median_ms']:.0f} ms / {f['p99_max_ms']:.0f} ms",
        ),
        ("gateway process at the end", "running" if f["gateway_exit"] is None else "EXITED"),
    )
    summary = (
        f"soak, {f['minutes']:g} min mixed load",
        f"{f['throughput']:.1f} inputs/s, lost {f['lost']}",
        "—",
        f"RSS {rss_growth:+.0f} MB over the run",
    )
    return {"table": table}, summary


def soak_production(f: Figures) -> Rendered:
    """The soak on PostgreSQL + RabbitMQ: the soak's table, the memory trend and the load."""
    values, _ = soak(f)
    trend = f.get("rss_trend_mb_per_hour")
    slope = "—" if trend is None else f"{trend:+.1f} MB/h"
    values["table"] += "\n" + rows(
        ("gateway RSS trend after warm-up (least-squares slope)", slope),
        ("load average during the run: mean / max", f"{f['load_mean']} / {f['load_max']}"),
    )
    rss_growth = (f["rss_end_mb"] or 0) - (f["rss_start_mb"] or 0)
    summary = (
        f"soak on PostgreSQL + RabbitMQ, {f['minutes']:g} min",
        f"{f['throughput']:.1f} inputs/s, lost {f['lost']}",
        "—",
        f"RSS {rss_growth:+.0f} MB over the run ({slope})",
    )
    return values, summary


def hostile(f: Figures) -> Rendered:
    lines = []
    for side in ("before", "after"):
        figures, ref = f[side], f[f"{side}_ref"]
        flood, pdfs, mail = figures["form_flood"], figures["crafted_pdfs"], figures["smtp_data"]
        lines += [
            (
                "4 x 47 MB anonymous form posts (S1)",
                f"{side} ({ref})",
                " ".join(flood["answers"]),
                f"{flood['rss_before_mib']:.0f} -> {flood['peak_mib']:.0f} MiB",
                f"{flood['cpu_s']:.1f} s",
            ),
            (
                f"5 crafted PDFs of {pdfs['pdf_mib']:.1f} MB in one post (S3)",
                f"{side} ({ref})",
                f"{pdfs['answer']} in {pdfs['wall_s']:.1f} s",
                "-",
                f"{pdfs['cpu_s']:.1f} s",
            ),
            (
                "4 x 24 MB SMTP messages at once (S10)",
                f"{side} ({ref})",
                " ".join(mail["answers"]),
                f"{mail['rss_before_mib']:.0f} -> {mail['peak_mib']:.0f} MiB",
                "-",
            ),
        ]
    head = "| attack | code | answers | memory: idle -> peak | CPU |\n|---|---|---|---|---|\n"
    before, after = f["before"], f["after"]

    def growth(side: Figures, key: str) -> float:
        return float(side[key]["peak_mib"] - side[key]["rss_before_mib"])

    summary = (
        "hostile load (S1, S3, S10)",
        f"form flood +{growth(after, 'form_flood'):.0f} MiB; crafted PDFs "
        f"{after['crafted_pdfs']['cpu_s']:.1f} s CPU; SMTP +{growth(after, 'smtp_data'):.0f} MiB",
        f"before: +{growth(before, 'form_flood'):.0f} MiB; "
        f"{before['crafted_pdfs']['cpu_s']:.1f} s; +{growth(before, 'smtp_data'):.0f} MiB",
        f"memory {growth(after, 'form_flood') / max(growth(before, 'form_flood'), 1):.2f}×, "
        f"CPU {after['crafted_pdfs']['cpu_s'] / max(before['crafted_pdfs']['cpu_s'], 0.01):.2f}×, "
        f"{growth(after, 'smtp_data') / max(growth(before, 'smtp_data'), 1):.2f}×",
    )
    return {"table": head + rows(*lines)}, summary


RENDERERS: dict[str, Callable[[Figures], Rendered]] = {
    "relay": relay,
    "smtp": smtp,
    "imap": imap,
    "twilio": twilio,
    "webform": webform,
    "ocr": ocr,
    "langid": langid,
    "hostile": hostile,
    "soak": soak,
    "soak_production": soak_production,
}
