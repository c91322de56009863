"""Left-to-right islands in right-to-left text: phone numbers, references, e-mails, amounts.

pages and acknowledgements -> **bidi** (find the runs, isolate them) -> HTML or plain text.

In a right-to-left paragraph the Unicode bidi algorithm lays out digit
groups separated by spaces from right to left: ``06 12 34 56 78`` shows as
``78 56 34 12 06``, ``1 250,00`` as ``250,00 1``, and the ``-`` of a
reference or the ``.`` after an e-mail address may jump to the wrong side.
Each such run is isolated left-to-right, which keeps it in one piece and in
its own order: ``<bdi dir="ltr">`` in HTML (``bdi_runs``, ``bdi``),
U+2066 LEFT-TO-RIGHT ISOLATE ... U+2069 POP DIRECTIONAL ISOLATE in plain
text (``isolate_runs``, ``isolate``). A text may also mark a run itself
with LRI ... PDI (the texts files do, for ``10/W/16``); ``bdi_runs`` turns
those marks into ``<bdi>``.

What counts as a run (``RUN``): a reference ``CP-XXXX-XXXX``, an e-mail
address, a ``+`` and digits, digit groups joined by spaces, dots, commas,
slashes, colons or hyphens (a phone number, an amount, a numeric date or
time), and a number of five digits or more. A date written with an Arabic
month name (``26 نونبر 2026``) is Arabic text read right to left, day
first: it is not a run, only its numbers are.
"""

from __future__ import annotations

import re

from jinja2 import Environment
from markupsafe import Markup, escape

LRI = "\u2066"
PDI = "\u2069"
RUN = re.compile(
    r"CP-[0-9A-Z]{4}-[0-9A-Z]{4}"
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
    r"|\+?\d+(?:[ \u00a0\u202f.,/:-]\d+)+"
    r"|\+\d+|\d{5,}"
)
MARKED = re.compile(f"{LRI}(.*?){PDI}", re.DOTALL)


def _pieces(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into (is a left-to-right run, piece), marked runs first."""
    found: list[tuple[bool, str]] = []
    position = 0
    for marked in MARKED.finditer(text):
        found.extend(_unmarked(text[position : marked.start()]))
        found.append((True, marked.group(1)))
        position = marked.end()
    found.extend(_unmarked(text[position:]))
    return [piece for piece in found if piece[1]]


def _unmarked(text: str) -> list[tuple[bool, str]]:
    found: list[tuple[bool, str]] = []
    position = 0
    for run in RUN.finditer(text):
        found.append((False, text[position : run.start()]))
        found.append((True, run.group(0)))
        position = run.end()
    found.append((False, text[position:]))
    return found


def isolate(value: object) -> str:
    """One value known to read left to right (a reference, a number), isolated in plain text."""
    return f"{LRI}{value}{PDI}"


def isolate_runs(text: str) -> str:
    """Plain text with every left-to-right run between LRI and PDI (already marked ones kept)."""
    return "".join(isolate(piece) if ltr else piece for ltr, piece in _pieces(text))


def bdi(value: object, style: str | None = None) -> Markup:
    """One value known to read left to right, as ``<bdi dir="ltr">`` (escaped).

    ``style``: an inline style for the element (e-mail, where style sheets are not read).
    """
    if style:
        return Markup('<bdi dir="ltr" style="{}">{}</bdi>').format(style, value)
    return Markup('<bdi dir="ltr">{}</bdi>').format(value)


def bdi_runs(text: object, style: str | None = None) -> Markup:
    """A sentence as HTML: escaped, every left-to-right run in ``<bdi dir="ltr">``."""
    if isinstance(text, Markup):  # already HTML: its author placed the marks
        return text
    if text is None:
        return Markup("")
    return Markup("").join(
        bdi(piece, style) if ltr else escape(piece) for ltr, piece in _pieces(str(text))
    )


def plain(text: str) -> str:
    """``text`` without isolate marks (to compare, search or measure what a reader sees)."""
    return text.replace(LRI, "").replace(PDI, "")


def install(env: Environment) -> Environment:
    """Register the filters ``ltr`` (``bdi``) and ``bidi`` (``bdi_runs``) on a Jinja environment."""
    env.filters["ltr"] = bdi
    env.filters["bidi"] = bdi_runs
    return env
