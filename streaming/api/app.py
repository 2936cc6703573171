"""Builds the Starlette application and owns its lifetime (model loading, schedulers)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import ServerConfig
from ..errors import StreamscribeError
from ..model.calibration import calibrate
from ..model.engine import Engine
from . import fallback, listen, prerecorded, realtime, transcriptions, twilio, web
from .auth import authorize
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .middleware import RequestTracking
from .state import AppState, state_of

log = logging.getLogger("streamscribe")


async def healthz(request: Request) -> JSONResponse:
    state = state_of(request)
    models = {name: {"calls": s.stats.calls, "model_calls": s.stats.model_calls,
                     "queued": s.stats.queued,
                     "running": s.stats.running, "partials_shed": s.stats.partials_shed,
                     "partials": s.stats.partials, "partials_fast": s.stats.partials_fast,
                     "busy_seconds": round(s.stats.busy_seconds, 3)}
              for name, s in state.engine.loaded().items()}
    return JSONResponse({"status": "ok", "default_model": state.engine.default,
                         "models": models, "active_streams": state.lifecycle.open_streams,
                         "requests_in_flight": state.lifecycle.requests,
                         "headroom": state.headroom.as_dict() if state.headroom else None})


async def readyz(request: Request) -> JSONResponse:
    """200 while the model is loaded and the server is not draining; 503 otherwise."""
    lifecycle = state_of(request).lifecycle
    return JSONResponse({"ready": lifecycle.ready, "model_loaded": lifecycle.model_loaded,
                         "draining": lifecycle.draining},
                        status_code=200 if lifecycle.ready else 503)


async def metrics(request: Request) -> Response:
    """Prometheus metrics; needs an API key when keys are configured (they show the models
    and the load), unlike the probes."""
    authorize(request)
    return Response(state_of(request).metrics.render(), media_type=METRICS_CONTENT_TYPE)


async def error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Registered for StreamscribeError: its OpenAI body and status."""
    error = exc if isinstance(exc, StreamscribeError) else StreamscribeError(str(exc))
    state_of(request).metrics.error(error.code)
    return JSONResponse(error.to_openai(), status_code=error.status)


def create_app(config: ServerConfig, engine: Engine | None = None) -> Starlette:
    """The one ASGI app. Pass an `engine` to share loaded models (tests, in-process CLI)."""
    engine = engine or Engine(config.model)
    owns_engine = not engine.loaded()
    state = AppState(config=config, engine=engine)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        state.headroom = await calibrate(engine, config.stream)
        state.lifecycle.model_loaded = True
        log.info("model %s ready", engine.default)
        try:
            yield
        finally:
            if owns_engine:
                await engine.close()

    routes = [Route("/healthz", healthz), Route("/readyz", readyz),
              Route("/metrics", metrics), *listen.routes(),
              *web.routes(), *transcriptions.routes(), *twilio.routes(), *realtime.routes(),
              *prerecorded.routes()]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={StreamscribeError: error_handler,
                                        **fallback.exception_handlers()},
                    middleware=[Middleware(RequestTracking, lifecycle=state.lifecycle,
                                           metrics=state.metrics)])
    app.router.default = fallback.not_found
    app.state.streamscribe = state
    return app
