"""Search latency at 10k / 100k (/ 1M) messages, as a ratio to a primary-key lookup.

The baseline — fetching one message by id through the same ``Database`` — is measured in
the same run on the same data, so the ratio survives a noisy shared machine. Messages are
bulk-inserted through the table (the index triggers and expression indexes run as in
production); searches go through ``parley.services.search.Search``, as the API calls it,
for a user who is a member of a tenth of the conversations.

    python bench/search_bench.py [--database sqlite|postgres|both] [--sizes 10000,100000]
                                 [--repeat 20] [--keep DIR] [--cjk-heavy]

``--keep DIR`` builds each database once and reuses it on later runs (a SQLite file in DIR,
a PostgreSQL database ``parley_search_bench_keep_<size>_<hash of DIR>``, so two sessions
keeping different directories never share one, and what the queries need in
``DIR/<database>-<size>.json``): building 1M messages takes minutes. Drop the PostgreSQL
database by hand when done (its name is printed).

``--cjk-heavy``: half of the messages in Japanese-like text (words of two to four characters
from a small vocabulary, Zipf-weighted, without spaces) instead of one in twenty random CJK
strings: a two-character word is then in tens of thousands of messages, the case the bigram
index leaves to a walk (``parley.services.search_sqlite``).

Prints a Markdown table per database (median and p95 in milliseconds, median ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text, update

sys.path.insert(0, str(Path(__file__).resolve().parent))
from databases import PG_ADMIN, make_database, timed  # noqa: E402

from parley.config import normalise_database_url
from parley.ids import new_id
from parley.services.search import Search
from parley.services.search_indexer import SearchIndexer
from parley.store import migrate
from parley.store.db import Database
from parley.store.tables.accounts import users
from parley.store.tables.conversations import conversations, members
from parley.store.tables.messages import messages

USERS = 200
CONVERSATIONS = 400
MEMBERS_PER_CONVERSATION = 20
VOCABULARY = 5000
INSERT_BATCH = 5000
WRITE_SAMPLE = 20_000
CJK = "東京大阪京都タワー駅前会議資料確認予定変更連絡電車天気週末準備"
# --cjk-heavy: Zipf-weighted like the Latin vocabulary, the commonest first.
CJK_WORDS = ["会議", "確認", "資料", "予定", "東京", "変更", "連絡", "準備", "電車", "天気", "週末", "大阪",
             "京都", "駅前", "タワー", "お願い", "よろしく", "ありがとう", "今日", "明日"]  # fmt: skip
CJK_HEAVY_SHARE = 0.5
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "de", "po", "ly", "qu", "ex", "an", "or"]


def vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < VOCABULARY:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    ordered = sorted(words)  # a set iterates in hash order, which changes per process
    rng.shuffle(ordered)
    return ordered


def message_text(rng: random.Random, words: list[str], cumulative: list[float], cjk_heavy: bool) -> str:
    """``cumulative``: the words' cumulative weights (``choices`` would add up all 5,000
    weights again for every message)."""
    if cjk_heavy:
        if rng.random() < CJK_HEAVY_SHARE:
            return "".join(rng.choices(CJK_WORDS, cum_weights=_CJK_CUMULATIVE, k=rng.randint(2, 6)))
    elif rng.random() < 0.05:
        return "".join(rng.choice(CJK) for _ in range(rng.randint(6, 20)))
    return " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(4, 20)))


_CJK_CUMULATIVE = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(CJK_WORDS))))




async def insert_rate(kind: str, revision: str, total: int, directory: Path) -> float:
    """Messages per second, bulk-inserted into a schema at ``revision``."""
    name = f"parley_search_bench_write_{revision}_{os.getpid()}"
    url, drop = await make_database(kind, directory, name)
    db = Database(url, pool_size=2, sqlite_synchronous="NORMAL")
    try:
        await migrate.upgrade(db, revision)
        data = await populate(
            db, total, random.Random(3), cjk_heavy=False, analyse=False, index=revision == "head"
        )
        return float(data["insert_per_second"])
    finally:
        await db.dispose()
        if drop is not None:
            await drop()


async def populate(
    db: Database, total: int, rng: random.Random, *, cjk_heavy: bool, analyse: bool = True, index: bool = True
) -> dict[str, Any]:
    """Users, conversations and ``total`` messages; returns what the queries need.

    ``index``: the batched indexer (migration 0017) indexes them, and its time counts."""
    now = datetime.now(UTC)
    user_ids = [new_id() for _ in range(USERS)]
    conversation_ids = [new_id() for _ in range(CONVERSATIONS)]
    async with db.transaction() as conn:
        await conn.execute(
            users.insert(),
            [
                {
                    "id": uid, "username": f"user{i}", "username_key": f"user{i}",
                    "display_name": f"User {i}", "password_hash": "x", "is_admin": False,
                    "created_at": now, "updated_at": now,
                }
                for i, uid in enumerate(user_ids)
            ],
        )
        await conn.execute(
            conversations.insert(),
            [
                {
                    "id": cid, "type": "group", "name": f"room {i}", "topic": "",
                    "created_at": now, "updated_at": now, "last_seq": 0, "last_activity_at": now,
                }
                for i, cid in enumerate(conversation_ids)
            ],
        )
        rows = []
        for cid in conversation_ids:
            for uid in rng.sample(user_ids, MEMBERS_PER_CONVERSATION):
                rows.append({
                    "conversation_id": cid, "user_id": uid, "role": "member", "joined_at": now,
                    "last_read_seq": 0, "last_delivered_seq": 0,
                })
        await conn.execute(members.insert(), rows)
    words = vocabulary(rng)
    # Zipf: a few words are everywhere.
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(words))))
    seqs = dict.fromkeys(conversation_ids, 0)
    start = now - timedelta(days=365)
    samples: list[str] = []
    inserted = 0
    began = time.perf_counter()
    while inserted < total:
        batch = []
        for _ in range(min(INSERT_BATCH, total - inserted)):
            cid = rng.choice(conversation_ids)
            seqs[cid] += 1
            content = message_text(rng, words, cumulative, cjk_heavy)
            if len(samples) < 200:
                samples.append(content)
            batch.append({
                "id": new_id(), "conversation_id": cid, "seq": seqs[cid], "version_seq": seqs[cid],
                "sender_id": rng.choice(user_ids), "kind": "text", "content": content,
                "client_msg_id": None, "reply_to_id": None, "mentions": "[]", "system_event": None,
                "created_at": start + timedelta(seconds=inserted * 0.3),
                "edited_at": None, "deleted_at": None,
            })
            inserted += 1
        async with db.transaction() as conn:
            await conn.execute(messages.insert(), batch)
    if index:
        await SearchIndexer(db).catch_up()
    elapsed = time.perf_counter() - began
    async with db.transaction() as conn:
        for cid, seq in seqs.items():
            await conn.execute(update(conversations).where(conversations.c.id == cid).values(last_seq=seq))
    if not analyse:
        return {"insert_per_second": total / elapsed}
    if not db.is_sqlite:
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    async with db.read() as conn:
        counts = {
            r.user_id: r.n
            for r in await conn.execute(
                text("SELECT user_id, count(*) AS n FROM members GROUP BY user_id ORDER BY n DESC")
            )
        }
    # The searcher: a member of about a tenth of the conversations.
    target = CONVERSATIONS * MEMBERS_PER_CONVERSATION // USERS
    searcher = min(counts, key=lambda uid: abs(counts[uid] - target))
    cjk = next(s for s in samples if " " not in s)
    mid = words[300]
    heavy = {"CJK, common 2 chars (walk)": CJK_WORDS[0]} if cjk_heavy else {}
    return {
        "insert_per_second": total / elapsed,
        "searcher": searcher,
        "memberships": counts[searcher],
        "queries": {
            "common word": words[0],
            "rare word": words[4000],
            "two words": f"{words[5]} {words[40]}",
            "prefix": mid[:3] + "*",
            "phrase": f'"{words[0]} {words[1]}"',
            "partial word": mid[1:5] if len(mid) > 5 else mid[1:],
            "CJK, 2 chars (bigrams)": cjk[:2],
            "CJK, 4 chars (trigram)": cjk[:4],
            "no match": "zzzzqqqq",
            **heavy,
        },
    }


async def kept_database(
    kind: str, total: int, keep: Path, cjk_heavy: bool
) -> tuple[Database, dict[str, Any]]:
    """The database of ``--keep``: built on the first run, reused after."""
    directory_hash = hashlib.sha256(str(keep.resolve()).encode()).hexdigest()[:8]
    name = f"parley_search_bench_keep_{total}_{directory_hash}"
    print(f"{kind}: kept database {name}", flush=True)
    saved = keep / f"{kind}-{total}.json"
    if saved.exists():
        if kind == "sqlite":
            url = normalise_database_url(f"sqlite:///{keep / (name + '.db')}")
        else:
            url = normalise_database_url(PG_ADMIN).rsplit("/", 1)[0] + f"/{name}"
        db = Database(url, pool_size=4, sqlite_synchronous="NORMAL")
        await migrate.upgrade(db)  # a schema change since the build applies to the kept data
        return db, json.loads(saved.read_text())
    url, _ = await make_database(kind, keep, name)
    db = Database(url, pool_size=4, sqlite_synchronous="NORMAL")
    await migrate.upgrade(db)
    data = await populate(db, total, random.Random(7), cjk_heavy=cjk_heavy)
    saved.write_text(json.dumps(data))
    return db, data


async def bench(
    kind: str, total: int, repeat: int, directory: Path, keep: Path | None, cjk_heavy: bool
) -> list[str]:
    drop = None
    if keep is not None:
        db, data = await kept_database(kind, total, keep, cjk_heavy)
    else:
        name = f"parley_search_bench_{total}_{os.getpid()}"
        url, drop = await make_database(kind, directory, name)
        db = Database(url, pool_size=4, sqlite_synchronous="NORMAL")
    try:
        if keep is None:
            await migrate.upgrade(db)
            data = await populate(db, total, random.Random(7), cjk_heavy=cjk_heavy)
        search = Search(db, urls=None)
        async with db.read() as conn:
            some_id = (await conn.execute(select(messages.c.id).limit(1).offset(total // 2))).scalar_one()

        async def lookup() -> None:
            async with db.read() as conn:
                (await conn.execute(select(messages).where(messages.c.id == some_id))).one()

        base = statistics.median(await timed(lookup, repeat * 5))
        lines = [
            f"\n### {kind}, {total:,} messages "
            f"(searcher in {data['memberships']} of {CONVERSATIONS} conversations; "
            f"bulk insert with index upkeep: {data['insert_per_second']:,.0f} messages/s)\n",
            f"Baseline, primary-key lookup: median {base:.3f} ms\n",
            "| query | q | hits (page of 20) | median ms | p95 ms | × baseline |",
            "|---|---|---|---|---|---|",
        ]
        for label, q in data["queries"].items():
            result: dict[str, Any] = {}

            async def run(q: str = q, result: dict[str, Any] = result) -> None:
                result.update(await search.search(data["searcher"], q, limit=20))

            laps = await timed(run, repeat)
            median = statistics.median(laps)
            p95 = sorted(laps)[max(0, int(len(laps) * 0.95) - 1)]
            hits = f"{len(result['results'])}{'+' if result['has_more'] else ''}"
            lines.append(f"| {label} | `{q}` | {hits} | {median:.2f} | {p95:.2f} | {median / base:.0f}× |")
        return lines
    finally:
        await db.dispose()
        if drop is not None:
            await drop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="build each database once in DIR and reuse it")
    parser.add_argument("--skip-write-cost", action="store_true", help="only the searches")
    parser.add_argument("--cjk-heavy", action="store_true", help="half the messages in Japanese-like text")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.database == "both" else [args.database]
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as directory:
        for kind in kinds:
            if not args.skip_write_cost:
                # What keeping the indexes costs a write: the same inserts without them (0001).
                without = await insert_rate(kind, "0001", WRITE_SAMPLE, Path(directory))
                with_index = await insert_rate(kind, "head", WRITE_SAMPLE, Path(directory))
                print(
                    f"\n{kind}: bulk insert of {WRITE_SAMPLE:,} messages: {without:,.0f}/s without "
                    f"the search indexes, {with_index:,.0f}/s with them ({with_index / without:.2f}×)",
                    flush=True,
                )
            for size in sizes:
                lines = await bench(kind, size, args.repeat, Path(directory), args.keep, args.cjk_heavy)
                for line in lines:
                    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
