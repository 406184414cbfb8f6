"""NUL bytes and unpaired surrogates in every parameter of every route, generated from the
route table (the OpenAPI document), on SQLite and PostgreSQL.

PostgreSQL refuses NUL in text ("invalid byte sequence 0x00") and UTF-8 cannot encode
``"\\ud800"``: before ``parley.fields`` checked text at the edge, either one in a username,
a topic, an id in a path or a query, a device name... was a 500. Every such request must be
a 400 ``VALIDATION_ERROR`` naming the field, and must leave the server serving.

Each path parameter, query parameter and JSON body field (top level, each variant of a
union) is poisoned alone while the others hold real values of a real world.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI

from parley.container import Container
from parley.ids import new_id
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import open_group, send

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]

POISONS = {"nul": "a\u0000b", "surrogate": "a\ud800b"}
# Not API routes of the document: the web client's pages take no parameters worth poisoning.
SKIPPED_PATHS = {"/api/v1/uploads"}  # multipart, not JSON: tested in test_uploads_api


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, entries in app.openapi()["paths"].items():
        for method, operation in entries.items():
            if method.isalpha() and path not in SKIPPED_PATHS:
                found.append((method.upper(), path, operation))
    return sorted(found, key=lambda item: (item[1], item[0]))


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_variants(document: dict[str, Any], operation: dict[str, Any]) -> list[dict[str, Any]]:
    """Each object schema the body may take (every branch of a union), resolved."""
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema")
    if schema is None:
        return []
    schema = resolve(document, schema)
    branches = schema.get("oneOf") or schema.get("anyOf") or [schema]
    return [resolve(document, branch) for branch in branches]


def constants(schema: dict[str, Any]) -> dict[str, Any]:
    """The discriminator values a branch needs to be chosen (``type: "group"``)."""
    fixed = {}
    for name, prop in schema.get("properties", {}).items():
        if "const" in prop:
            fixed[name] = prop["const"]
        elif len(prop.get("enum", ())) == 1:
            fixed[name] = prop["enum"][0]
    return fixed


def takes_text(prop: dict[str, Any]) -> str | None:
    """"text" / "texts" for a string or string-list property, else None."""
    options = prop.get("anyOf", [prop])
    for option in options:
        if option.get("type") == "string" and "const" not in option and "enum" not in option:
            return "text"
        if option.get("type") == "array" and option.get("items", {}).get("type") == "string":
            return "texts"
    return None


class World:
    async def build(self, client: httpx.AsyncClient, container: Container) -> World:
        self.alice: UserHandle = await make_user(client, "alice")
        # An administrator: the admin routes check the role before the body.
        await container.accounts.set_admin(self.alice.id, True)
        self.bob: UserHandle = await make_user(client, "bob")
        group = await open_group(client, self.alice, [self.bob], name="sweep")
        message = await send(client, self.alice, group["id"], "hello")
        upload = await client.post(
            "/api/v1/uploads",
            files={"file": ("notes.txt", b"notes\n", "text/plain")},
            headers=self.alice.headers,
        )
        assert upload.status_code == 201, upload.text
        self.values = {
            "conversation_id": group["id"],
            "message_id": message["id"],
            "user_id": self.bob.id,
            "session_id": self.alice.session_id,
            "attachment_id": upload.json()["attachment"]["id"],
            "emoji": "👍",
            "slug": group.get("slug") or "sweep",
            "variant": "original",
            # No preview exists in this world: only the poisoned request matters here.
            "preview_id": new_id(),
            "subscription_id": new_id(),
            # No export exists either (data lifecycle, DESIGN §6.4).
            "export_id": new_id(),
            "invite_id": new_id(),
            "report_id": new_id(),
            "token": "no-such-invite-token",
            # Integrations (DESIGN §6.6): none exist here; only the poisoned request matters.
            "bot_id": new_id(),
            "webhook_id": new_id(),
            "secret": "not-the-secret",
            "command_id": new_id(),
            # An E2EE device id (DESIGN §6.1); none is registered in this world.
            "device_id": "laptop",
            "avatar_key": "nokey",
            "size": "256",
        }
        return self

    def path(self, template: str, poisoned: str | None = None, poison: str = "") -> str:
        filled = template
        for name, value in self.values.items():
            filled = filled.replace("{" + name + "}", quote(poison if name == poisoned else value, safe=""))
        # A new route's path parameter needs a value above, or its poison is never sent.
        assert "{" not in filled, f"no value for a parameter of {template}: add it to World"
        return filled


def assert_refused(response: httpx.Response, field: str, what: str) -> None:
    assert response.status_code == 400, (what, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR", (what, error)
    fields = [detail["field"] for detail in error.get("details", [])]
    assert any(field in f.split(".") for f in fields), (what, error)


@pytest.mark.parametrize("poison", sorted(POISONS))
async def test_every_parameter_of_every_route_refuses_bad_text(
    poison: str, app: FastAPI, client: httpx.AsyncClient
) -> None:
    world = await World().build(client, app.state.parley)
    document = app.openapi()
    bad = POISONS[poison]
    checked = 0
    for method, template, operation in operations(app):
        headers = world.alice.headers
        for parameter in operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            if where == "path" and poison == "nul":
                # A surrogate cannot travel in a URL (UTF-8); NUL can, as %00.
                response = await client.request(method, world.path(template, name, bad), headers=headers)
                assert_refused(response, name, f"{method} {template} path {name}")
                checked += 1
            elif where == "query" and poison == "nul":
                response = await client.request(
                    method, world.path(template), params={name: bad}, headers=headers
                )
                assert_refused(response, name, f"{method} {template} query {name}")
                checked += 1
        for variant in body_variants(document, operation):
            for name, prop in variant.get("properties", {}).items():
                kind = takes_text(prop)
                if kind is None:
                    continue
                body = constants(variant) | {name: bad if kind == "text" else [bad]}
                # ensure_ascii: a lone surrogate travels as the JSON escape "\ud800".
                response = await client.request(
                    method,
                    world.path(template),
                    content=json.dumps(body).encode(),
                    headers={**headers, "content-type": "application/json"},
                )
                assert_refused(response, name, f"{method} {template} body {name}")
                checked += 1
    assert checked >= (60 if poison == "nul" else 25), checked  # the sweep walked the table
    # The server still serves, and nothing half-written is visible.
    me = await client.get("/api/v1/users/me", headers=world.alice.headers)
    assert me.status_code == 200 and me.json()["user"]["username"] == "alice"
    history = await client.get(
        f"/api/v1/conversations/{world.values['conversation_id']}/messages", headers=world.alice.headers
    )
    assert [m["content"] for m in history.json()["messages"] if m["kind"] == "text"] == ["hello"]


async def test_public_routes_refuse_bad_text_unauthenticated(client: httpx.AsyncClient) -> None:
    """Login, registration and refresh: the fields the adversarial pass found 500s in."""
    await make_user(client, "carol")
    for poison in POISONS.values():
        for path, body, field in (
            ("/api/v1/auth/login", {"username": f"carol{poison}", "password": "whatever it is"}, "username"),
            ("/api/v1/auth/login", {"username": "carol", "password": f"pass{poison}word!"}, "password"),
            ("/api/v1/auth/login", {"username": "carol", "password": "x" * 12, "device_name": poison}, "device_name"),
            ("/api/v1/auth/register", {"username": "dave", "password": f"long enough {poison}"}, "password"),
            ("/api/v1/auth/register", {"username": "dave", "password": "long enough pw", "display_name": poison}, "display_name"),
            ("/api/v1/auth/refresh", {"refresh_token": poison}, "refresh_token"),
        ):
            response = await client.post(
                path, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
            )
            assert_refused(response, field, f"{path} {field}")
