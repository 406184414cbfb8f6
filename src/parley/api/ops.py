"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from parley import __version__
from parley.api.deps import Client, Services
from parley.errors import AuthenticationFailed, Forbidden
from parley.observability.health import Degraded

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


# Headers a reverse proxy adds: a request carrying one came from elsewhere, even when the
# proxy itself connects over loopback.
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def check_metrics_access(request: Request, services: Services, client: Client) -> None:
    """Who may scrape: a bearer of ``PARLEY_METRICS_TOKEN``, a client in
    ``PARLEY_METRICS_ALLOW``; with neither configured, loopback clients that did not come
    through a proxy. Metrics name routes, counts and timings: not for the whole internet."""
    settings = services.settings
    address = _address(client.ip_address)
    if settings.metrics_allow and address is not None:
        if any(address in ipaddress.ip_network(net, strict=False) for net in settings.metrics_allow):
            return
    if settings.metrics_token is not None:
        scheme, _, offered = request.headers.get("authorization", "").partition(" ")
        expected = settings.metrics_token.get_secret_value()
        if scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), expected.encode()):
            return
        raise AuthenticationFailed("Send 'Authorization: Bearer <PARLEY_METRICS_TOKEN>'")
    if settings.metrics_allow:
        raise Forbidden("Metrics are served to the addresses in PARLEY_METRICS_ALLOW only")
    forwarded = any(name in request.headers for name in FORWARDING_HEADERS)
    if address is None or not address.is_loopback or forwarded:
        raise Forbidden(
            "Metrics are served to loopback clients only; set PARLEY_METRICS_TOKEN or "
            "PARLEY_METRICS_ALLOW to scrape from elsewhere"
        )


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: Services, client: Client) -> Response:
    check_metrics_access(request, services, client)
    await services.refresh_metrics()
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
