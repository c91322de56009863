"""The staff page of the monthly register: ``/ops/register/?month=YYYY-MM``.

browser --GET /ops/register/--> ``Store.register(zone).month(month)`` (the
same register ``intake register export`` writes) -> **register_view**
(charts: complaints by channel x product, the delays to acknowledge and to
answer by channel (median, 90th percentile), how many past each deadline,
and the inputs that were not complaints, counted apart) -> ``register.html``;
--GET /ops/register/export.xlsx|.csv?month=--> the staff download, written
by ``gateway.ops.register`` (``export_bytes``), the command's own writers.

Read-only, behind the ``/ops/`` roles (operator, admin); no form posts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from markupsafe import Markup

from gateway.lib.http.auth import require_staff
from gateway.lib.http.pages import Pages
from gateway.lib.services import Services
from gateway.ops import plots
from gateway.ops.register import MEDIA_TYPES, export_bytes
from gateway.store.register import NO_PRODUCT, GroupSums, MonthRegister
from gateway.store.staff import StaffSession

HERE = Path(__file__).parent
_pages = Pages((HERE / "templates",), (HERE / "texts.json",))
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
ANSWER_LATE = "#8b6508"


@dataclass(frozen=True)
class RegisterView:
    """What the page shows of one month's register."""

    register: MonthRegister
    by_channel: list[GroupSums]  # one line per channel, then the total ("*")
    previous: str
    following: str
    per_channel_product: Markup
    delays: Markup
    late: Markup
    non_complaints: Markup

    @property
    def total(self) -> GroupSums | None:
        return self.by_channel[-1] if self.by_channel else None


def now() -> datetime:
    """The page's clock (past a deadline is counted against it)."""
    return datetime.now(UTC)


def this_month(zone: str, moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m")


def month_after(month: str, step: int) -> str:
    """``month`` moved by ``step`` months (``2026-12``, 1 -> ``2027-01``)."""
    year, number = (int(part) for part in month.split("-"))
    index = year * 12 + number - 1 + step
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def kind_label(kind: str, texts: dict[str, str]) -> str:
    """The words for a non-complaint kind: ``triage.spam`` as the triage page names it."""
    if kind.startswith("triage."):
        return texts.get(f"triage_kind_{kind.removeprefix('triage.')}", kind)
    return texts.get(f"register_kind_{kind.replace('.', '_')}", kind)


def register_view(register: MonthRegister, texts: dict[str, str]) -> RegisterView:
    """The page's charts and tables from ``register`` (no I/O)."""
    by_channel = register.groups(by=("channel",))
    channels = [group.channel for group in by_channel if group.channel != "*"]
    return RegisterView(
        register=register,
        by_channel=by_channel,
        previous=month_after(register.month, -1),
        following=month_after(register.month, 1),
        per_channel_product=_per_channel_product(register, channels, texts),
        delays=_delays(by_channel, texts),
        late=_late(by_channel, texts),
        non_complaints=plots.bars(
            [kind_label(kind, texts) for kind in register.non_complaints],
            list(register.non_complaints.values()),
            title=texts["register_non_complaints"],
            colours=[plots.CYCLE[-1]] * len(register.non_complaints),
        ),
    )


def _per_channel_product(
    register: MonthRegister, channels: list[str], texts: dict[str, str]
) -> Markup:
    products = sorted({row.product or NO_PRODUCT for row in register.rows})
    series = {
        product: [
            sum(
                1
                for row in register.rows
                if row.channel == channel and (row.product or NO_PRODUCT) == product
            )
            for channel in channels
        ]
        for product in products
    }
    return plots.stacked_bars(channels, series, title=texts["register_per_channel_product"])


def _labels(by_channel: list[GroupSums], texts: dict[str, str]) -> list[str]:
    return [texts["register_total"] if g.channel == "*" else g.channel for g in by_channel]


def _delays(by_channel: list[GroupSums], texts: dict[str, str]) -> Markup:
    series = {
        texts["register_ack_median"]: [group.ack.median for group in by_channel],
        texts["register_ack_p90"]: [group.ack.p90 for group in by_channel],
        texts["register_answer_median"]: [group.answer.median for group in by_channel],
        texts["register_answer_p90"]: [group.answer.p90 for group in by_channel],
    }
    return plots.grouped_bars(
        _labels(by_channel, texts), series, title=texts["register_delays_chart"]
    )


def _late(by_channel: list[GroupSums], texts: dict[str, str]) -> Markup:
    series: dict[str, list[float | None]] = {
        texts["register_ack_late"]: [float(group.ack.late) for group in by_channel],
        texts["register_answer_late"]: [float(group.answer.late) for group in by_channel],
    }
    colours = dict(zip(series, (plots.OVERDUE, ANSWER_LATE), strict=True))
    return plots.grouped_bars(
        _labels(by_channel, texts), series, title=texts["register_late_chart"], colours=colours
    )


def build_router(services: Services) -> APIRouter:
    """The register page's routes, beside the operator page's (``/ops/register/``)."""
    router = APIRouter(prefix="/ops", include_in_schema=False)
    zone = services.settings.timezone

    def month_of(request: Request) -> str | None:
        month = request.query_params.get("month") or this_month(zone, now())
        return month if _MONTH.fullmatch(month) else None

    def load(month: str) -> MonthRegister:
        return services.store.register(zone).month(month, now=now())

    @router.get("/register/")
    async def page(
        request: Request, staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        texts = _pages.texts_for(request)
        month = month_of(request)
        if month is None:
            return _pages.render(
                request, "register.html", status=400, staff=staff, view=None, month=""
            )
        register = await run_in_threadpool(load, month)
        view = register_view(register, texts)
        return _pages.render(
            request, "register.html", staff=staff, view=view, month=month, kind_label=kind_label
        )

    @router.get("/register/export{suffix}")
    async def download(
        request: Request, suffix: str, _staff: Annotated[StaffSession, Depends(require_staff)]
    ) -> Response:
        month = month_of(request)
        if month is None or suffix not in MEDIA_TYPES:
            return Response(status_code=404)
        register = await run_in_threadpool(load, month)
        data = await run_in_threadpool(export_bytes, register, suffix)
        return Response(
            data,
            media_type=MEDIA_TYPES[suffix],
            headers={
                "Content-Disposition": f'attachment; filename="register-{month}{suffix}"',
                "Cache-Control": "no-store",
            },
        )

    return router
