"""Bot pictures: a bot's owner gives it a profile picture (processed like anyone's) or takes
it away; everyone who shares a conversation with the bot sees it at once; nobody else can,
nor can the bot itself; bad pictures and bursts are handled like profile pictures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from parley.container import Container
from tests.conftest import make_user
from tests.support.attachment_helpers import png_bytes
from tests.support.chat_helpers import code, open_group
from tests.support.container_events import EventLog
from tests.support.integration_helpers import make_bot

pytestmark = pytest.mark.usefixtures("backend")


def picture(data: bytes, name: str = "bot.png", kind: str = "image/png") -> dict[str, tuple[str, bytes, str]]:
    return {"file": (name, data, kind)}


def stored_pictures(container: Container, bot_id: str) -> list[Path]:
    root = Path(container.settings.data_dir) / "media" / "avatars" / bot_id
    return sorted(root.rglob("*.webp")) if root.exists() else []


async def test_an_owner_gives_their_bot_a_picture(client: httpx.AsyncClient, container: Container) -> None:
    owner = await make_user(client, "owner")
    teammate = await make_user(client, "teammate")
    bot = await make_bot(client, owner, "painter", "Painter")
    group = await open_group(client, owner, [teammate], name="Studio")
    added = await client.post(
        f"/api/v1/conversations/{group['id']}/members", json={"user_ids": [bot.id]}, headers=owner.headers
    )
    assert added.status_code in (200, 201), added.text
    log = EventLog(container)

    answer = await client.put(
        f"/api/v1/bots/{bot.id}/avatar", files=picture(png_bytes(300, 200)), headers=owner.headers
    )
    assert answer.status_code == 200, answer.text
    avatar = answer.json()["bot"]["avatar"]
    assert set(avatar) == {"small", "large"} and answer.json()["bot"]["profile_version"] == 1
    served = await client.get(avatar["large"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
    assert len(stored_pictures(container, bot.id)) == 2
    # Everyone who shares a conversation with the bot is told, and reads it in member lists.
    event = await log.wait_for(lambda e: e.type == "user.updated" and e.data["user"]["id"] == bot.id)
    assert teammate.id in event.user_ids and event.data["user"]["avatar"] == avatar
    members = (await client.get(f"/api/v1/conversations/{group['id']}/members", headers=teammate.headers)).json()
    [listed] = [m for m in members["members"] if m["user_id"] == bot.id]
    assert listed["avatar"] == avatar and listed["is_bot"] is True

    removed = await client.delete(f"/api/v1/bots/{bot.id}/avatar", headers=owner.headers)
    assert removed.status_code == 200 and removed.json()["bot"]["avatar"] is None
    assert (await client.get(avatar["large"])).status_code == 404
    assert stored_pictures(container, bot.id) == []
    again = await client.delete(f"/api/v1/bots/{bot.id}/avatar", headers=owner.headers)
    assert again.status_code == 404 and code(again) == "NOT_FOUND"


async def test_only_the_owner_and_only_pictures(client: httpx.AsyncClient, container: Container) -> None:
    owner = await make_user(client, "owner")
    stranger = await make_user(client, "stranger")
    bot = await make_bot(client, owner, "guarded")
    url = f"/api/v1/bots/{bot.id}/avatar"
    # Another user's bot does not exist for them; a bot cannot manage itself.
    assert (await client.put(url, files=picture(png_bytes()), headers=stranger.headers)).status_code == 404
    assert (await client.delete(url, headers=stranger.headers)).status_code == 404
    as_bot = {"Authorization": f"Bot {bot.token}"}
    assert (await client.put(url, files=picture(png_bytes()), headers=as_bot)).status_code in (401, 403)
    missing = await client.put(
        "/api/v1/bots/01M00000000000000000000000/avatar", files=picture(png_bytes()), headers=owner.headers
    )
    assert missing.status_code == 404, missing.text
    # Not a picture, a lying type, an empty file, no file part, a NUL in the name.
    for files in (
        picture(b"just text", "notes.txt", "text/plain"),
        picture(b"GIF89a" + b"\x00" * 40, "fake.png", "image/png"),
        picture(b"", "empty.png"),
    ):
        refused = await client.put(url, files=files, headers=owner.headers)
        assert 400 <= refused.status_code < 500, (files["file"][0], refused.text)
    # A NUL in the file name: the name is not kept, the picture is.
    nul = await client.put(url, files=picture(png_bytes(), "bad\x00name.png"), headers=owner.headers)
    assert nul.status_code == 200 and nul.json()["bot"]["avatar"] is not None, nul.text
    no_file = await client.put(url, data={"other": "x"}, headers=owner.headers)
    assert 400 <= no_file.status_code < 500
    # A burst of parallel uploads leaves exactly one picture (both sizes) behind.
    answers = await asyncio.gather(*(
        client.put(url, files=picture(png_bytes(color=(n * 20, 10, 10))), headers=owner.headers) for n in range(6)
    ))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    current = (await client.get(f"/api/v1/bots/{bot.id}", headers=owner.headers)).json()["bot"]["avatar"]
    assert current is not None and len(stored_pictures(container, bot.id)) == 2
