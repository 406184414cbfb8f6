"""Search over HTTP, on both databases: what is found, what never is, filters, ranking,
pages — and every bad input (issue #7)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from parley.ids import new_id
from parley.services import search as search_module
from tests.conftest import NO_SEND_LIMITS, UserHandle, make_user
from tests.support.chat_helpers import code, open_direct, open_group, send
from tests.support.search_shapes import backend  # noqa: F401  (replaces conftest's: adds PostgreSQL through indexes)

pytestmark = [pytest.mark.usefixtures("backend"), pytest.mark.settings(**NO_SEND_LIMITS)]


async def search(
    client: httpx.AsyncClient, user: UserHandle, q: str, **params: Any
) -> httpx.Response:
    return await client.get("/api/v1/search", params={"q": q, **params}, headers=user.headers)


async def found(client: httpx.AsyncClient, user: UserHandle, q: str, **params: Any) -> list[str]:
    """The contents of every hit, in rank order (one page of up to 50)."""
    response = await search(client, user, q, limit=50, **params)
    assert response.status_code == 200, (q, response.text)
    return [hit["message"]["content"] for hit in response.json()["results"]]


async def team(client: httpx.AsyncClient) -> tuple[UserHandle, UserHandle, str]:
    alice, bob = await make_user(client, "alice"), await make_user(client, "bob")
    group = await open_group(client, alice, [bob], name="Launch team")
    return alice, bob, group["id"]


async def test_words_phrases_prefixes_and_partial_words(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    for text in (
        "Please deploy to prod now",
        "deploy it to prod later",
        "The deployment went fine",
        "we redeploy tomorrow",
        "Deploy, to prod!",
        "unrelated chatter",
    ):
        await send(client, alice, cid, text)

    words = await found(client, bob, "deploy")
    assert set(words) == {
        "Please deploy to prod now", "deploy it to prod later", "Deploy, to prod!",
        "The deployment went fine", "we redeploy tomorrow",
    }
    # Whole-word matches rank above matches inside longer words.
    assert set(words[:3]) == {"Please deploy to prod now", "deploy it to prod later", "Deploy, to prod!"}
    # A phrase: these words in this order, whatever punctuation sits between them.
    assert set(await found(client, bob, '"deploy to prod"')) == {"Deploy, to prod!", "Please deploy to prod now"}
    assert set(await found(client, bob, "deplo*")) == {
        "Please deploy to prod now", "deploy it to prod later", "Deploy, to prod!", "The deployment went fine",
    }
    assert set(await found(client, bob, '"deploy to pro"*')) == {"Please deploy to prod now", "Deploy, to prod!"}
    assert set(await found(client, bob, "ploy")) == set(words)
    assert await found(client, bob, "deploy tomorrow") == ["we redeploy tomorrow"]
    assert await found(client, bob, "DEPLOYMENT") == ["The deployment went fine"]
    assert await found(client, bob, "deploy chatter") == []  # every term must match


async def test_result_shape_and_highlights(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    message = await send(client, alice, cid, "🚀 Ship the <b>release</b> & tell @bob")
    response = await search(client, bob, "release")
    assert response.status_code == 200
    body = response.json()
    assert body["has_more"] is False and body["next_cursor"] is None
    [hit] = body["results"]
    assert hit["message_id"] == message["id"] and hit["seq"] == message["seq"]
    assert hit["created_at"] == message["created_at"]
    assert hit["conversation"] == {"id": cid, "type": "group", "name": "Launch team"}
    assert hit["sender"] == {"id": alice.id, "username": "alice", "display_name": "alice", "profile_version": 0}
    assert hit["message"]["id"] == message["id"] and hit["message"]["content"] == message["content"]
    assert hit["match"] == "words"
    # Plain text with offsets (code points: the rocket is one), never markup.
    assert hit["snippet"] == message["content"]
    [mark] = hit["highlights"]
    assert hit["snippet"][mark["start"] : mark["end"]] == "release"

    dm = await open_direct(client, alice, bob)
    await send(client, bob, dm["id"], "the release notes")
    hits = (await search(client, alice, "notes")).json()["results"]
    assert hits[0]["conversation"] == {"id": dm["id"], "type": "direct", "name": "bob"}


async def test_long_message_snippet(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    text = ("lorem ipsum dolor " * 300) + "the needle is here " + ("sit amet " * 300)
    await send(client, alice, cid, text[:10_000])
    [hit] = (await search(client, bob, "needle")).json()["results"]
    snippet = hit["snippet"]
    assert len(snippet) <= 210 and snippet.startswith("…") and snippet.endswith("…")
    [mark] = hit["highlights"]
    assert snippet[mark["start"] : mark["end"]] == "needle"
    assert hit["message"]["content"] == text[:10_000]


async def test_cjk_cyrillic_and_other_scripts(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    for text in ("東京タワーに行く", "京都は雨です", "Привет, МИР", "서울에서 만나요", "สวัสดีครับ", "plain latin"):
        await send(client, alice, cid, text)
    assert await found(client, bob, "東京") == ["東京タワーに行く"]  # 2 characters: bigrams
    assert await found(client, bob, "東京タワー") == ["東京タワーに行く"]  # trigrams
    assert set(await found(client, bob, "京都")) == {"京都は雨です"}
    assert await found(client, bob, "東京 行く") == ["東京タワーに行く"]
    assert await found(client, bob, "привет") == ["Привет, МИР"]  # case-insensitive
    assert await found(client, bob, "мир") == ["Привет, МИР"]
    assert await found(client, bob, "риве") == ["Привет, МИР"]  # inside a word
    assert await found(client, bob, "서울") == ["서울에서 만나요"]
    assert await found(client, bob, "สวัสดี") == ["สวัสดีครับ"]
    [hit] = (await search(client, bob, "タワー")).json()["results"]
    [mark] = hit["highlights"]
    assert hit["snippet"][mark["start"] : mark["end"]] == "タワー"


async def test_short_substrings_of_scripts_without_spaces(client: httpx.AsyncClient) -> None:
    """Two characters (the bigram indexes, then LIKE / ILIKE on each document found) and one
    (LIKE alone): found inside longer text, in any ASCII case, never from the characters
    apart or in another order; a capital sigma finds a final one."""
    alice, bob, cid = await team(client)
    for text in ("会議は東京で", "東x京 apart", "京東 reversed", "Plan A東 first", "ΑΣ東 greek", "👍🏽👍🏽 twice"):
        await send(client, alice, cid, text)
    assert await found(client, bob, "東京") == ["会議は東京で"]
    assert await found(client, bob, "a東") == ["Plan A東 first"]  # LIKE folds ASCII case
    assert await found(client, bob, "Σ東") == ["ΑΣ東 greek"]
    assert await found(client, bob, "🏽👍") == ["👍🏽👍🏽 twice"]  # across two emoji
    assert set(await found(client, bob, "東 京")) == {"会議は東京で", "東x京 apart", "京東 reversed"}
    assert await found(client, bob, "京で") == ["会議は東京で"]  # the end of the text
    assert await found(client, bob, "で東") == []


async def test_diacritics_emoji_and_combining_characters(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    composed = await send(client, alice, cid, "un café au lait")
    decomposed = await send(client, alice, cid, "cafe\u0301 noir")  # e + COMBINING ACUTE
    await send(client, alice, cid, "plain cafe here")
    await send(client, alice, cid, "a naïve question")
    await send(client, alice, cid, "🎉 launch party 🎉")
    await send(client, alice, cid, "👩‍💻 pairing today")
    await send(client, alice, cid, "thumbs 👍🏽 up")

    everything = {"un café au lait", "cafe\u0301 noir", "plain cafe here"}
    assert set(await found(client, bob, "cafe")) == everything
    assert set(await found(client, bob, "café")) == everything
    assert set(await found(client, bob, "cafe\u0301")) == everything  # typed decomposed
    assert set(await found(client, bob, "CAFÉ")) == everything
    assert await found(client, bob, "naive") == ["a naïve question"]
    assert await found(client, bob, "🎉 party") == ["🎉 launch party 🎉"]
    assert await found(client, bob, "🎉🎉") == []  # not adjacent anywhere
    assert await found(client, bob, "👩‍💻") == ["👩‍💻 pairing today"]
    assert await found(client, bob, "👍🏽") == ["thumbs 👍🏽 up"]

    by_id = {hit["message_id"]: hit for hit in (await search(client, bob, "café")).json()["results"]}
    for message, expected in ((composed, "café"), (decomposed, "cafe\u0301")):
        hit = by_id[message["id"]]
        [mark] = hit["highlights"]
        assert hit["snippet"][mark["start"] : mark["end"]] == expected  # the accent included


async def test_edits_are_found_by_new_text_and_tombstones_never(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    message = await send(client, alice, cid, "the password is swordfish")
    edited = await client.patch(
        f"/api/v1/messages/{message['id']}", json={"content": "the password is marlin"}, headers=alice.headers
    )
    assert edited.status_code == 200
    assert await found(client, bob, "swordfish") == []
    assert await found(client, bob, "swordf*") == []
    assert await found(client, bob, "wordfis") == []
    assert await found(client, bob, "marlin") == ["the password is marlin"]

    reacted = await client.put(f"/api/v1/messages/{message['id']}/reactions/👍", headers=bob.headers)
    assert reacted.status_code == 200  # a new version_seq; the text is still indexed
    assert await found(client, bob, "marlin") == ["the password is marlin"]

    cjk = await send(client, alice, cid, "秘密の東京")
    for doomed in (message, cjk):
        assert (await client.delete(f"/api/v1/messages/{doomed['id']}", headers=alice.headers)).status_code == 200
    for q in ("marlin", "arli", "password", "東京", "秘密の東京"):
        assert await found(client, bob, q) == [], q


async def test_system_messages_are_never_found(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    renamed = await client.patch(f"/api/v1/conversations/{cid}", json={"name": "zebrafish"}, headers=alice.headers)
    assert renamed.status_code == 200
    carol = await make_user(client, "carolyn")
    added = await client.post(f"/api/v1/conversations/{cid}/members", json={"user_ids": [carol.id]}, headers=alice.headers)
    assert added.status_code == 200
    for q in ("zebrafish", "carolyn", "member", "added"):
        assert await found(client, bob, q) == [], q


async def test_only_current_members_find_anything(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    carol = await make_user(client, "carol")
    await send(client, alice, cid, "quarterly numbers are in")
    other = await open_group(client, alice, [carol], name="Other")
    await send(client, alice, other["id"], "quarterly numbers for carol")

    assert await found(client, bob, "quarterly") == ["quarterly numbers are in"]
    assert await found(client, carol, "quarterly") == ["quarterly numbers for carol"]
    left = await client.delete(f"/api/v1/conversations/{cid}/members/{bob.id}", headers=bob.headers)
    assert left.status_code == 204
    assert await found(client, bob, "quarterly") == []
    assert await found(client, bob, "quarterly", conversation_id=cid) == []

    # Naming a conversation you are not in (or one that does not exist) looks the same: empty.
    theirs = await search(client, carol, "quarterly", conversation_id=cid)
    missing = await search(client, carol, "quarterly", conversation_id=new_id())
    assert theirs.status_code == missing.status_code == 200
    assert theirs.json() == missing.json() == {"results": [], "next_cursor": None, "has_more": False}

    deleted = await client.delete(f"/api/v1/conversations/{other['id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert await found(client, carol, "quarterly") == []
    assert await found(client, alice, "quarterly") == ["quarterly numbers are in"]


async def test_filters(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    elsewhere = await open_group(client, alice, [bob], name="Elsewhere")
    sent = []
    for user, conversation, text in (
        (alice, cid, "budget draft one"),
        (bob, cid, "budget draft two"),
        (alice, elsewhere["id"], "budget draft three"),
        (bob, elsewhere["id"], "budget draft four"),
    ):
        sent.append(await send(client, user, conversation, text))
        await asyncio.sleep(0.005)  # distinct milliseconds for the date filters

    assert set(await found(client, bob, "budget", conversation_id=cid)) == {"budget draft one", "budget draft two"}
    assert set(await found(client, bob, "budget", sender_id=alice.id)) == {"budget draft one", "budget draft three"}
    assert await found(client, bob, "budget", sender_id=bob.id, conversation_id=cid) == ["budget draft two"]
    third = sent[2]["created_at"]  # milliseconds; the stored time is at or after it
    assert set(await found(client, bob, "budget", after=third)) == {"budget draft three", "budget draft four"}
    assert set(await found(client, bob, "budget", before=third)) == {"budget draft one", "budget draft two"}
    assert await found(client, bob, "budget", after=sent[1]["created_at"], before=third) == ["budget draft two"]
    assert len(await found(client, bob, "budget", after="2000-01-01", before="2999-12-31")) == 4
    assert await found(client, bob, "budget", after="2999-01-01") == []
    offset = await search(client, bob, "budget", after="2000-01-01T00:00:00+02:00")
    assert offset.status_code == 200 and len(offset.json()["results"]) == 4
    # Attachments do not exist yet: nothing has one (see has_attachment_condition).
    assert await found(client, bob, "budget", has="attachment") == []


async def test_ranking(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    await send(client, alice, cid, "one rollout among many other words in a rather long message about plans")
    await send(client, alice, cid, "rollouts everywhere")  # only inside a longer word
    await send(client, alice, cid, "rollout rollout")
    older = await send(client, alice, cid, "rollback now")
    newer = await send(client, alice, cid, "rollback now")
    ranked = await found(client, bob, "rollout")
    assert ranked == [
        "rollout rollout",
        "one rollout among many other words in a rather long message about plans",
        "rollouts everywhere",
    ]
    hits = (await search(client, bob, "rollback")).json()["results"]
    assert [h["message_id"] for h in hits] == [newer["id"], older["id"]]  # equal: newest first
    partial = (await search(client, bob, "ollou")).json()["results"]
    assert all(h["match"] == "partial" for h in partial) and len(partial) == 3


async def test_pages_have_no_duplicates_and_no_gaps(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    for i in range(12):
        await send(client, alice, cid, f"standup notes {i}")
        await send(client, bob, cid, f"standup {'standup ' * (i % 3)}item {i}")
        await send(client, alice, cid, f"prestandup chatter {i}")  # partial matches
    everything = (await search(client, bob, "standup", limit=50)).json()["results"]
    assert len(everything) == 36
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        page = (await search(client, alice, "standup", **params)).json()
        assert len(page["results"]) <= 7
        seen.extend(hit["message_id"] for hit in page["results"])
        cursor = page["next_cursor"]
        assert page["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 36
    assert seen == [hit["message_id"] for hit in everything]

    first = (await search(client, bob, "standup", limit=5)).json()
    other_query = await search(client, bob, "notes", cursor=first["next_cursor"])
    other_filter = await search(client, bob, "standup", cursor=first["next_cursor"], sender_id=bob.id)
    for response in (other_query, other_filter):
        assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "cursor"


async def test_a_common_word_is_ranked_in_windows_of_recent_hits(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past RANK_WINDOW whole-word hits, relevance ranks the newest window of them, then the
    next older window: every hit once, in that order, across pages."""
    alice, bob, cid = await team(client)
    sent = []  # oldest first
    for i in range(8):
        sent.append(await send(client, alice, cid, f"standup notes {i}"))
        sent.append(await send(client, bob, cid, f"standup {'standup ' * (i % 3)}item {i}"))
        sent.append(await send(client, alice, cid, f"prestandup chatter {i}"))  # partial matches
    ranked = [hit["message_id"] for hit in (await search(client, bob, "standup", limit=50)).json()["results"]]
    assert len(ranked) == 24

    monkeypatch.setattr(search_module, "RANK_WINDOW", 5)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await search(client, alice, "standup", **params)).json()
        seen.extend(hit["message_id"] for hit in page["results"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # Windows: newest first, each down to its fifth whole-word hit; inside one, the ranking.
    expected: list[str] = []
    window: set[str] = set()
    whole = 0
    for message in reversed(sent):
        window.add(message["id"])
        whole += not message["content"].startswith("prestandup")
        if whole == 5:
            expected += [m for m in ranked if m in window]
            window, whole = set(), 0
    expected += [m for m in ranked if m in window]
    assert seen == expected
    assert sorted(seen) == sorted(ranked)


async def test_bad_input(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    await send(client, alice, cid, "something to find")
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "   \t\n "}, "q"),
        ({"q": "x"}, "q"),
        ({"q": "  é  "}, "q"),
        ({"q": "x" * 501}, "q"),
        ({"q": "something", "limit": 0}, "limit"),
        ({"q": "something", "limit": 51}, "limit"),
        ({"q": "something", "limit": "lots"}, "limit"),
        ({"q": "something", "after": "yesterday"}, "after"),
        ({"q": "something", "before": "2024-13-45"}, "before"),
        ({"q": "something", "after": "2024-05-02", "before": "2024-05-01"}, "before"),
        ({"q": "something", "has": "file"}, "has"),
        ({"q": "something", "has": "attachment,link"}, "has"),
        ({"q": "something", "cursor": "not-a-cursor"}, "cursor"),
        ({"q": "something", "cursor": "eyJmIjoxfQ"}, "cursor"),  # {"f":1}
        ({"q": "something", "conversation_id": "nul\x00"}, "conversation_id"),
        ({"q": "something", "sender_id": "'; --"}, "sender_id"),
        ({"q": " ".join(f"w{i}" for i in range(17))}, "q"),
    ]
    for params, field in cases:
        response = await client.get("/api/v1/search", params=params, headers=bob.headers)
        assert response.status_code == 400, (params, response.text)
        assert code(response) == "VALIDATION_ERROR"
        assert field in [d["field"] for d in response.json()["error"]["details"]], params
    one = await search(client, bob, "x")
    assert "at least 2 characters" in one.json()["error"]["message"]
    assert (await search(client, bob, "x" * 500)).status_code == 200
    assert (await client.get("/api/v1/search", params={"q": "something"})).status_code == 401


QUERIES_THAT_ARE_JUST_TEXT = [
    '"', '""', '"""', "*", "**", "-", "NEAR", "OR", "AND", "NOT", "'; --",
    "'; DROP TABLE messages; --", "something OR", "OR something", "NOT something",
    "something AND NOT x", "NEAR(something find)", "NEAR(something, 5)", "(something",
    "something)", "((", "content:something", "messages_fts:something", "{something}",
    "^something", "something*", "*something", "some*thing", "something:*", "-something",
    "+something", '"something', 'something"', '"unbalanced "quotes', "\\", "\\\\",
    "%", "%%", "_", "__", "%something%", "s%g", "' OR 1=1 --", "a'b", "::", "<->",
    "something & find", "!something", "something | find", "\x00\x01", "\u200b\u200b",
    "🎉", "e\u0301\u0301\u0301", "\u0301\u0301",
]


async def test_operators_and_metacharacters_are_plain_text(client: httpx.AsyncClient) -> None:
    alice, bob, cid = await team(client)
    await send(client, alice, cid, "something to find")
    await send(client, alice, cid, "50% off: a_b or 'quoted' (not really)")
    for q in QUERIES_THAT_ARE_JUST_TEXT:
        response = await search(client, bob, q)
        assert response.status_code in (200, 400), (q, response.text)
        if response.status_code == 400:  # nothing left once control characters go
            assert code(response) == "VALIDATION_ERROR" and len(q.strip(" \x00\x01")) < 2, q
    # The words inside operator soup are still searched; the syntax is not obeyed.
    assert await found(client, bob, 'something "find') == ["something to find"]  # quote ignored
    assert await found(client, bob, "NEAR(something find)") == []  # "near" is a word too
    assert await found(client, bob, "something*") == ["something to find"]
    assert await found(client, bob, "(something)") == ["something to find"]
    assert await found(client, bob, "something OR nothing") == []  # every word must match
    # LIKE and FTS wildcards match only themselves.
    assert await found(client, bob, "%%") == []
    assert await found(client, bob, "__") == []
    assert await found(client, bob, "50% off") == ["50% off: a_b or 'quoted' (not really)"]
    assert await found(client, bob, "a_b") == ["50% off: a_b or 'quoted' (not really)"]
    assert await found(client, bob, "'quoted'") == ["50% off: a_b or 'quoted' (not really)"]
