"""One error body for every failure (DESIGN §3), whichever layer raised it."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from parley.api.web import not_found_page
from parley.errors import (
    AuthenticationFailed,
    FieldProblem,
    MalformedBody,
    MethodNotAllowed,
    NotFound,
    ParleyError,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from parley.fields import BAD_ID
from parley.store.failures import FAILURE_TYPES, unavailable

log = logging.getLogger(__name__)

_HTTP_STATUS_ERRORS: dict[int, type[ParleyError]] = {
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
}


def error_response(request: Request, error: ParleyError) -> JSONResponse:
    body = error.to_dict()
    body["request_id"] = request.scope.get("state", {}).get("request_id", "")
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, Unavailable):
        headers["Retry-After"] = "1"
    return JSONResponse({"error": body}, status_code=error.status, headers=headers)


def validation_error(errors: Sequence[Any]) -> ValidationFailed | NotFound:
    """Map pydantic's error list onto ``VALIDATION_ERROR`` / ``INVALID_JSON`` with fields;
    a malformed id in the path names nothing: ``NOT_FOUND``, as an unknown one would."""
    if any(e.get("type") == BAD_ID and tuple(e.get("loc", ()))[:1] == ("path",) for e in errors):
        return NotFound()
    problems: list[FieldProblem] = []
    for item in errors:
        kind = item.get("type", "")
        loc = [str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")]
        if kind == "json_invalid":
            return MalformedBody()
        field = ".".join(loc) or "body"
        message = str(item.get("msg", "is not valid"))
        if kind == "missing":
            message = "is required"
        problems.append(FieldProblem(field, message))
    first = problems[0] if problems else FieldProblem("body", "is not valid")
    return ValidationFailed(f"{first.field}: {first.message}", details=problems)


def allowed_methods(request: Request) -> list[str]:
    """Every method the API serves at this path, from the OpenAPI document. (Starlette
    names only the first matching route's, wrong when GET and PATCH are separate routes.)"""
    path = request.url.path
    # By the number of parameters of the matching templates: a literal path
    # (``/conversations/directory``) is served by its own routes, not by the parameter
    # one it also matches (``/conversations/{conversation_id}``) — the most specific wins.
    by_specificity: dict[int, set[str]] = {}
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods = by_specificity.setdefault(template.count("{"), set())
            methods |= {m.upper() for m in operations if m.isalpha()}
    return sorted(by_specificity[min(by_specificity)]) if by_specificity else []


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ParleyError)
    async def _parley_error(request: Request, exc: ParleyError) -> JSONResponse:
        if exc.status >= 500:
            log.error("internal error", exc_info=exc)
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        content_type = request.headers.get("content-type", "")
        whole_body_rejected = any(tuple(e.get("loc", ())) == ("body",) for e in errors)
        if whole_body_rejected and content_type and "json" not in content_type.lower():
            return error_response(
                request,
                UnsupportedMediaType("Send the body as JSON with Content-Type: application/json"),
            )
        return error_response(request, validation_error(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and (page := not_found_page(request)) is not None:
            return page
        error_type = _HTTP_STATUS_ERRORS.get(exc.status_code)
        if error_type is not None:
            error: ParleyError = error_type()
        elif 400 <= exc.status_code < 500:
            error = ValidationFailed(str(exc.detail))
            error.status = exc.status_code  # type: ignore[misc]
        else:
            error = ParleyError()
        response = error_response(request, error)
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response

    async def _backend_failure(request: Request, exc: Exception) -> JSONResponse:
        """The database (or another backend) unreachable: 503, retry. Anything else of
        these types is a bug, answered like any other."""
        error = unavailable(exc)
        if error is None:
            log.exception("unhandled error", exc_info=exc)
            return error_response(request, ParleyError())
        log.warning("backend unavailable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return error_response(request, error)

    # Registered by type (not under Exception), so the answer passes through the request
    # observer like any other response and is counted as the 503 it is.
    for failure_type in FAILURE_TYPES:
        app.add_exception_handler(failure_type, _backend_failure)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(request, ParleyError())
