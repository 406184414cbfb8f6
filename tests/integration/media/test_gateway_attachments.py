"""``message.send`` over the socket carries attachments like the REST send does."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.gateway_helpers import RawSocket, new_user, running_server

pytestmark = pytest.mark.usefixtures("backend")


async def test_send_with_an_attachment_over_the_socket(
    tmp_path: Path, database_url: str, free_port: int
) -> None:
    async with running_server(tmp_path, database_url, free_port) as server:
        alice = await new_user(server.base_url, "alice")
        bob = await new_user(server.base_url, "bob")
        socket: RawSocket | None = None
        try:
            dm = await alice.create_direct(bob.user_id)
            token = alice.tokens.access_token  # type: ignore[union-attr]
            async with httpx.AsyncClient(base_url=server.base_url) as http:
                upload = await http.post(
                    "/api/v1/uploads",
                    files={"file": ("notes.txt", b"meeting notes\n", "text/plain")},
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert upload.status_code == 201, upload.text
            attachment_id = upload.json()["attachment"]["id"]
            socket = await RawSocket.open(server.base_url)
            await socket.identify(token)
            answer = await socket.call(
                "1", "message.send", {"conversation_id": dm["id"], "attachment_ids": [attachment_id]}
            )
            assert answer["op"] == "ack", answer
            message = answer["data"]["message"]
            assert message["content"] == ""
            assert [a["id"] for a in message["attachments"]] == [attachment_id]
            reused = await socket.call(
                "2", "message.send", {"conversation_id": dm["id"], "attachment_ids": [attachment_id]}
            )
            assert reused["op"] == "error" and reused["error"]["code"] == "ATTACHMENT_ALREADY_USED"
            empty = await socket.call("3", "message.send", {"conversation_id": dm["id"]})
            assert empty["op"] == "error" and empty["error"]["code"] == "VALIDATION_ERROR"
        finally:
            if socket is not None:
                await socket.close()
            await alice.aclose()
            await bob.aclose()
