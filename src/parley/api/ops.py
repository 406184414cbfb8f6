"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from parley import __version__
from parley.api.deps import Services

router = APIRouter(tags=["operations"])
READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    """The process is alive and its event loop answers."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
async def readyz(services: Services) -> JSONResponse:
    """Each dependency answers; 503 names the one that does not."""
    checks = await services.readiness_checks()
    results: dict[str, Any] = {}
    ready = True
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), READINESS_TIMEOUT_SECONDS)
            results[name] = {"status": "ok"}
        except Exception as exc:  # any failure means not ready; say which and why
            ready = False
            results[name] = {"status": "error", "error": type(exc).__name__}
    body = {"status": "ok" if ready else "unavailable", "checks": results}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(services: Services) -> Response:
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
