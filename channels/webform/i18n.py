"""Languages of the public web form: the table, the texts, the products, dates.

browser -> **which language, which texts** -> routes render the page.

The page exists in French (at ``/``), Arabic, English and Spanish (at
``/ar/``, ``/en/``, ``/es/``). Everything a customer reads comes from the
data files next to this module (``texts/<code>.json``, ``products.json``);
adding a language is one row in ``LANGUAGES`` and one texts file, never a
new code path. A unit test checks every texts file has the same keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

HERE = Path(__file__).parent


@dataclass(frozen=True)
class UiLanguage:
    code: str  # BCP 47, also the html lang attribute
    direction: str  # "ltr" or "rtl"
    path: str  # where the page lives
    # Where the form posts: this exact path is read under the form's own body
    # cap (``routes.body_limits``), not the gateway's.
    action: str

    @property
    def status_path(self) -> str:
        """The customer's own view of a complaint (``status``), in this language."""
        return f"/{self.code}/status/"


# The first row is the default (served at "/").
LANGUAGES: tuple[UiLanguage, ...] = (
    UiLanguage("fr", "ltr", "/", "/fr/"),
    UiLanguage("ar", "rtl", "/ar/", "/ar/"),
    UiLanguage("en", "ltr", "/en/", "/en/"),
    UiLanguage("es", "ltr", "/es/", "/es/"),
)
BY_CODE: dict[str, UiLanguage] = {item.code: item for item in LANGUAGES}
DEFAULT = LANGUAGES[0]
# How the customer wants to be contacted; ``letter`` needs a postal address,
# which the form does not ask for.
CONTACT_OPTIONS: tuple[str, ...] = ("email", "phone", "sms", "whatsapp")


@cache
def texts(code: str) -> dict[str, Any]:
    """Everything the customer reads on the page, in one language."""
    data: dict[str, Any] = json.loads((HERE / "texts" / f"{code}.json").read_text("utf-8"))
    return data


@cache
def products() -> tuple[dict[str, Any], ...]:
    """The product table: ``code`` (what goes on the queue) and ``label`` per language."""
    data = json.loads((HERE / "products.json").read_text("utf-8"))
    return tuple(data["products"])


def product_codes() -> frozenset[str]:
    return frozenset(item["code"] for item in products())


def language_for(code: str | None) -> UiLanguage:
    """The UI language for a code, or the default."""
    return BY_CODE.get(code or "", DEFAULT)


def format_date(moment: datetime, code: str, zone: str, *, with_time: bool = False) -> str:
    """A date as a person of that language writes it, in the gateway's time zone.

    Digits stay Western (0-9) in Arabic, as Moroccan usage has it; month
    names are the Moroccan ones (``texts/ar.json``).
    """
    local = moment.astimezone(ZoneInfo(zone))
    words = texts(code)
    pattern = words["datetime_format" if with_time else "date_format"]
    return str(pattern).format(
        day=local.day,
        month=words["months"][local.month - 1],
        year=local.year,
        time=f"{local:%H:%M}",
    )
