"""The notice after a staff action (post-redirect-get), worded from the member's own audit entry.

action (POST) -> audit entry -> 303 to ``PAGE?notice=CODE&entry=ID`` (**back**)
-> the page (GET) -> **notice**: the sentence of ``CODE``, its blanks filled
from entry ``ID``'s data, only when that entry is the member's own (another
member's entry id in the URL says nothing). A code the page does not know, a
malformed id or someone else's entry: no notice at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from fastapi import Request
from fastapi.responses import RedirectResponse

from gateway.lib.services import Services
from gateway.store.staff import StaffSession

# Audit entry ids are database integers: more digits than this is no id of ours.
_MAX_ID_DIGITS = 18


def back(page: str, notice: str, entry: int | None = None, anchor: str = "") -> RedirectResponse:
    """303 to ``page`` with the notice code (and the audit entry that words it)."""
    query = f"notice={notice}" + (f"&entry={entry}" if entry is not None else "")
    return RedirectResponse(f"{page}?{query}" + (f"#{anchor}" if anchor else ""), status_code=303)


def notice(
    request: Request,
    texts: Mapping[str, str],
    staff: StaffSession,
    services: Services,
    *,
    prefix: str,
    codes: Collection[str],
    blanks: Collection[str],
    action: str | None = None,
) -> str | None:
    """The sentence ``texts[prefix + code]`` with ``blanks`` filled from the member's entry."""
    kind = request.query_params.get("notice", "")
    template = texts.get(f"{prefix}{kind}")
    if kind not in codes or template is None:
        return None
    values = dict.fromkeys(blanks, "")
    entry_id = request.query_params.get("entry", "")
    if entry_id:
        if not entry_id.isdigit() or len(entry_id) > _MAX_ID_DIGITS:
            return None
        entry = services.store.staff_audit.get(int(entry_id))
        if entry is None or entry.actor != staff.user.name:
            return None
        if action is not None and entry.action != action:
            return None
        values.update({key: str(value) for key, value in entry.data.items() if key in values})
    elif "{" in template:
        return None  # a sentence that names something, with nothing to name
    return template.format(**values)
