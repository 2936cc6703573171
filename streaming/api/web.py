"""The browser caption page: `/` and its static files under `/web/`.

The page itself holds no secret, so it is served without a key (the user types the key into
it); every API call the page makes is authenticated as usual. `/web/config.json` tells the page
whether a key is needed and which models it may offer.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .state import state_of

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


async def index(request: Request) -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def page_config(request: Request) -> JSONResponse:
    state = state_of(request)
    model = state.config.model
    return JSONResponse({
        "auth_required": bool(state.config.api_keys),
        "default_model": model.name,
        "models": list(model.allowed_models()),
    })


def routes() -> list[BaseRoute]:
    return [
        Route("/", index),
        Route("/web/config.json", page_config),
        Mount("/web", app=StaticFiles(directory=WEB_DIR), name="web"),
    ]
