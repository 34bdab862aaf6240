"""`create_app(settings)`: the one FastAPI app `tllm serve` runs.

State lives on `app.state` (settings, the assistant's config and core, the engine pool,
metrics),
never in module globals, so tests can run several apps side by side.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse

from ..assistant.answer import Assistant
from ..data.feedback import FeedbackStore
from ..home import Home
from . import errors
from .adapters_api import router as adapters_router
from .arena_api import router as arena_router
from .engines import EnginePool
from .jobs import Jobs
from .limits import BodyLimit
from .memories_api import router as memories_router
from .metrics import ServerMetrics
from .openai_api import router as openai_router
from .settings import ServeSettings


def create_app(settings: ServeSettings) -> FastAPI:
    settings.check()
    home = Home.open(settings.home)
    config = home.load_config()

    app = FastAPI(title="Together-LLM", version="0.1.0", docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.home = home
    app.state.config = config
    app.state.engines = EnginePool(home, config, settings.slots, settings.adapters_mib)
    # the one core every route and the web chat answer through: system prompt, sampling
    # defaults and seeds, knowledge grounding and citation, the agent
    app.state.assistant = Assistant(home, config, knowledge=settings.knowledge)
    app.state.metrics = ServerMetrics()
    app.state.metrics.batch_size.set_function(app.state.engines.busy_slots)
    app.state.metrics.queue_depth.set_function(app.state.engines.queue_depth)
    app.state.feedback = FeedbackStore(home.feedback_dir)
    app.state.jobs = Jobs(home)  # the studio's long work (jobs.py)
    errors.install(app)
    app.include_router(memories_router)
    app.include_router(arena_router)  # before the OpenAI router, whose /v1 catch-all 404s the rest
    app.include_router(openai_router)
    app.include_router(adapters_router)

    @app.middleware("http")
    async def count(request: Request, call_next):
        start = time.perf_counter()
        status = "500"  # an exception escaping the route becomes a 500 further out
        try:
            response = await call_next(request)
            status = str(response.status_code)
            return response
        finally:
            route = request.scope.get("route")  # None when no route matched
            path = route.path if route else "other"
            app.state.metrics.requests.labels(path, status).inc()
            app.state.metrics.latency.labels(path).observe(time.perf_counter() - start)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )  # SDKs add their own

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": config.model}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(
            app.state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    @app.on_event("shutdown")
    def close_engines():
        app.state.engines.close()
        app.state.assistant.grounding.close()

    if settings.ui:
        from .web import mount_web_chat

        app = mount_web_chat(app)  # last: it takes "/" and everything not matched above
    return app
