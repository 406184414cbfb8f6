"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from parley import __version__
from parley.api.deps import Services
from parley.backends import Degraded

router = APIRouter(tags=["operations"])
READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """The process is alive and its event loop answers."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
async def readyz(services: Services) -> JSONResponse:
    """Each dependency answers; 503 names the one that does not. A degraded one (the bus
    while Redis is away) is named too, but the node still serves: 200, ``degraded``."""
    checks = await services.readiness_checks()
    results: dict[str, Any] = {}
    ready, degraded = True, False
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), READINESS_TIMEOUT_SECONDS)
            results[name] = {"status": "ok"}
        except Degraded as exc:
            degraded = True
            cause = exc.__cause__ or exc
            results[name] = {"status": "degraded", "error": type(cause).__name__}
        except Exception as exc:  # any other failure means not ready; say which and why
            ready = False
            results[name] = {"status": "error", "error": type(exc).__name__}
    status = "unavailable" if not ready else "degraded" if degraded else "ok"
    return JSONResponse({"status": status, "checks": results}, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(services: Services) -> Response:
    await services.refresh_metrics()
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
