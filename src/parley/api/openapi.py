"""The OpenAPI document, corrected to say what Parley really answers.

FastAPI documents a 422 for every route with parameters; Parley answers bad input with 400
and one error body for every failure (DESIGN §3). This rewrites the generated document
once: the 422s become 400s, and every operation lists the error statuses it can return with
the shared ``Error`` schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string", "example": "VALIDATION_ERROR"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
                "request_id": {"type": "string"},
                "retry_after": {"type": "number"},
            },
        }
    },
}

ERROR_STATUSES = {
    "400": "Invalid input (VALIDATION_ERROR, INVALID_JSON)",
    "401": "Not authenticated (AUTHENTICATION_FAILED, INVALID_TOKEN, TOKEN_EXPIRED, ...)",
    "403": "Not allowed (FORBIDDEN, BLOCKED)",
    "404": "Not found, or not visible to the caller (NOT_FOUND)",
    "405": "Method not allowed (METHOD_NOT_ALLOWED)",
    "409": "Conflict (USERNAME_TAKEN, IDEMPOTENCY_CONFLICT, ...)",
    "413": "Body too large (PAYLOAD_TOO_LARGE)",
    "415": "Body is not JSON (UNSUPPORTED_MEDIA_TYPE)",
    "416": "Range not satisfiable",
    "429": "Rate limited (RATE_LIMITED, with Retry-After)",
    "503": "A dependency is down; retry (UNAVAILABLE)",
}


def install_openapi(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path_item in document.get("paths", {}).values():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                responses = operation["responses"]
                responses.pop("422", None)
                for status, description in ERROR_STATUSES.items():
                    responses.setdefault(status, {"description": description, "content": error_ref})
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
