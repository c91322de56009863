"""Links to routes come from a template found once, and say what ``url_path_for`` says."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI

from gateway.lib.http.links import route_path


def app() -> FastAPI:
    application = FastAPI()
    router = APIRouter(prefix="/v1")

    @router.get("/complaints/{reference}", name="get_complaint")
    async def get_complaint(reference: str) -> None: ...

    @router.get("/complaints/{reference}/files/{name}", name="get_file")
    async def get_file(reference: str, name: str) -> None: ...

    application.include_router(router)
    return application


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("get_complaint", {"reference": "CP-7K4M-2QX9"}),
        ("get_file", {"reference": "CP-7K4M-2QX9", "name": "scan.pdf"}),
        ("get_file", {"name": "a", "reference": "b"}),
        ("get_complaint", {"reference": "répertoire é"}),  # the long way: not plain
        ("get_file", {"reference": "__name__", "name": "x"}),  # a value that is a marker
    ],
)
def test_the_path_is_what_url_path_for_gives(name: str, params: dict[str, str]) -> None:
    application = app()
    expected = str(application.url_path_for(name, **params))
    assert route_path(application, name, **params) == expected
    # The second time from the template, the same.
    assert route_path(application, name, **params) == expected


def test_an_unknown_route_still_raises() -> None:
    from starlette.routing import NoMatchFound

    with pytest.raises(NoMatchFound):
        route_path(app(), "nothing_here", reference="CP-7K4M-2QX9")
