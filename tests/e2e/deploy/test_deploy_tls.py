"""The shipped nginx configuration terminates TLS in front of two nodes on Redis and
PostgreSQL: HTTPS and WSS work end to end with a self-signed certificate, HTTP/2 is offered,
old protocols and weak suites are refused, plain HTTP redirects, HSTS is sent."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import ssl
import warnings
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.gateway_helpers import TEST_PASSWORD
from tests.support.nginx_edge import Nginx
from tests.support.scaleout_helpers import Cluster, running_cluster

pytestmark = pytest.mark.postgres


def verifying_context(nginx: Nginx) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(nginx.ca_file))


def handshake(nginx: Nginx, context: ssl.SSLContext) -> tuple[str | None, str | None]:
    """TLS handshake with the edge; returns (protocol version, ALPN protocol)."""
    with socket.create_connection(("127.0.0.1", nginx.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.version(), tls.selected_alpn_protocol()


async def test_https_and_wss_through_the_tls_edge(tmp_path: Path, empty_postgres_url: str) -> None:
    async with running_cluster(tmp_path, empty_postgres_url) as cluster:
        nginx = cluster.nginx
        assert nginx is not None
        context = verifying_context(nginx)
        await asyncio.to_thread(check_handshakes, nginx)
        await check_redirect(nginx)
        await chat_over_tls(cluster, nginx, context)


def check_handshakes(nginx: Nginx) -> None:
    modern = verifying_context(nginx)
    modern.set_alpn_protocols(["h2", "http/1.1"])
    version, alpn = handshake(nginx, modern)
    assert version == "TLSv1.3" and alpn == "h2"

    tls12 = verifying_context(nginx)
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert handshake(nginx, tls12)[0] == "TLSv1.2"

    # TLS 1.1 and 1.0 are refused by the edge (the client is told to allow them).
    legacy = verifying_context(nginx)
    with warnings.catch_warnings():  # deprecated on purpose: the client offers only these
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy.minimum_version = ssl.TLSVersion.TLSv1
        legacy.maximum_version = ssl.TLSVersion.TLSv1_1
    legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        handshake(nginx, legacy)

    # A TLS 1.2 client offering only non-forward-secret CBC suites finds nothing in common.
    weak = verifying_context(nginx)
    weak.maximum_version = ssl.TLSVersion.TLSv1_2
    weak.set_ciphers("AES128-SHA:AES256-SHA")
    with pytest.raises(ssl.SSLError):
        handshake(nginx, weak)

    # The certificate is checked: a client that does not trust it fails.
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(nginx, ssl.create_default_context())


async def check_redirect(nginx: Nginx) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"http://127.0.0.1:{nginx.redirect_port}/api/v1/auth/login?x=1", json={}
        )
    assert answer.status_code == 308
    assert answer.headers["location"] == "https://127.0.0.1/api/v1/auth/login?x=1"


async def chat_over_tls(cluster: Cluster, nginx: Nginx, context: ssl.SSLContext) -> None:
    name = f"tls{secrets.token_hex(3)}"
    async with httpx.AsyncClient(base_url=nginx.tls_url, verify=context) as http:
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert health.headers["strict-transport-security"] == "max-age=63072000"
        registered = await http.post(
            "/api/v1/auth/register", json={"username": name, "password": TEST_PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = await http.post(
            "/api/v1/auth/login", json={"username": name, "password": TEST_PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        me = login.json()["user"]["id"]
        notes = await http.post(
            "/api/v1/conversations", json={"type": "direct", "user_id": me}, headers=headers
        )
        assert notes.status_code in (200, 201), notes.text
        conversation_id = notes.json()["conversation"]["id"]

        wss = nginx.tls_url.replace("https://", "wss://") + "/ws"
        async with websockets.connect(wss, ssl=context) as socket_:
            await socket_.send(json.dumps({"op": "identify", "token": token}))
            ready = json.loads(await asyncio.wait_for(socket_.recv(), 10))
            assert ready["op"] == "ready"
            sent = await http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"content": "over TLS"},
                headers=headers,
            )
            assert sent.status_code == 201, sent.text
            while True:
                frame = json.loads(await asyncio.wait_for(socket_.recv(), 10))
                if frame.get("op") == "event" and frame["type"] == "message.created":
                    assert frame["data"]["message"]["content"] == "over TLS"
                    break
