"""What end-to-end encryption costs, as ratios to plain messages in the same run.

One in-process server (the ASGI app on a fresh SQLite database, no network) and a group of
``--members`` users, each with an E2EE device (the SDK's ``enable_e2ee``). Measured:

- server cost per send: wall time of ``POST .../messages`` with plain content vs with a
  ready-made ciphertext of the same text (the server's validation and storage only);
- client cost per message: the SDK's encrypt and decrypt (sender keys, AES-256-GCM,
  Ed25519) against the JSON encoding of a plain send;
- key distribution on a membership change: the first encrypted send after a member is
  removed (a new epoch: pairwise-encrypting the sender key for every remaining device and
  posting it) vs a plain send.

    python bench/e2ee_bench.py [--members 100] [--messages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from parley.app import create_app
from parley.client import ParleyClient
from parley.config import Settings

PASSWORD = "a perfectly fine passphrase"
TEXT = "The quarterly numbers are in; let's go through them at the 10:00 meeting. " * 2


def settings(directory: Path) -> Settings:
    return Settings(
        data_dir=directory / "data",
        database_url=f"sqlite+aiosqlite:///{directory / 'bench.db'}",
        secret_key="bench-secret-" + "x" * 40,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        argon2_parallelism=1,
        access_log=False,
        group_commit_window_ms=1.0,
        message_rate_per_second=1e6,
        message_burst=1_000_000,
        conversation_message_rate_per_second=1e6,
        conversation_message_burst=1_000_000,
        api_rate_per_second=1e6,
        api_burst=1_000_000,
        registrations_per_address=1_000_000,
        login_address_failures_allowed=1_000_000,
    )


async def user(app: Any, name: str, state: Path) -> ParleyClient:
    client = ParleyClient("http://bench", transport=httpx.ASGITransport(app=app))
    await client.register(name, PASSWORD)
    await client.login(name, PASSWORD)
    await client.enable_e2ee(state / name)
    return client


async def timed(work: Any, count: int) -> float:
    """Median microseconds of ``await work(i)``."""
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await work(i)
        samples.append(1e6 * (time.perf_counter() - started))
    return statistics.median(samples)


async def run(members: int, messages: int) -> dict[str, Any]:
    from parley.store import migrate

    with tempfile.TemporaryDirectory() as raw:
        directory = Path(raw)
        app = create_app(settings(directory))
        await migrate.upgrade(app.state.parley.db)
        async with app.router.lifespan_context(app):
            clients = [await user(app, f"user{i:03d}", directory / "state") for i in range(members)]
            owner = clients[0]
            ids = [c.user_id for c in clients[1:]]
            plain = await owner.create_group("plain", ids)
            secret = await owner.create_group("secret", ids, encrypted=True)
            assert owner.e2ee is not None
            first = time.perf_counter()
            await owner.send_message(secret["id"], TEXT)  # shares the first epoch
            first_share_ms = 1e3 * (time.perf_counter() - first)
            plain_path = f"/api/v1/conversations/{plain['id']}/messages"
            secret_path = f"/api/v1/conversations/{secret['id']}/messages"
            ready = [await owner.e2ee.encrypt(secret["id"], TEXT) for _ in range(messages)]

            for _ in range(10):  # warm up both paths
                await owner.request("POST", plain_path, json={"content": TEXT})
            plain_samples: list[float] = []
            secret_samples: list[float] = []
            for i in range(messages):  # interleaved: both see the same machine, same moment
                for samples, path, body in (
                    (plain_samples, plain_path, {"content": TEXT}),
                    (secret_samples, secret_path, ready[i]),
                ):
                    started = time.perf_counter()
                    await owner.request("POST", path, json=body)
                    samples.append(1e6 * (time.perf_counter() - started))
            server_plain = statistics.median(plain_samples)
            server_secret = statistics.median(secret_samples)
            client_plain = await timed(
                lambda i: asyncio.sleep(0, json.dumps({"content": TEXT})), messages
            )
            sealed: list[dict[str, Any]] = []

            async def encrypt(i: int) -> None:
                sealed.append(await owner.e2ee.encrypt(secret["id"], TEXT))  # type: ignore[union-attr]

            client_encrypt = await timed(encrypt, messages)
            reader = clients[1]
            assert reader.e2ee is not None
            stored = [
                (await owner.request("POST", secret_path, json=s))["message"] for s in sealed[:messages]
            ]
            await reader.e2ee.sync_inbox()
            client_decrypt = await timed(lambda i: reader.e2ee.decrypt_message(stored[i]), messages)  # type: ignore[union-attr]

            await owner.remove_member(secret["id"], clients[-1].user_id)
            started = time.perf_counter()
            await owner.send_message(secret["id"], TEXT)  # a new epoch for members - 1 devices
            rekey_ms = 1e3 * (time.perf_counter() - started)
            started = time.perf_counter()
            await owner.send_message(plain["id"], TEXT)
            plain_send_ms = 1e3 * (time.perf_counter() - started)
            for client in clients:
                await client.aclose()
    return {
        "members": members,
        "messages": messages,
        "server_us_per_send": {"plain": round(server_plain), "encrypted": round(server_secret),
                               "ratio": round(server_secret / server_plain, 2)},
        "client_us_per_message": {"plain_encode": round(client_plain, 1), "encrypt": round(client_encrypt),
                                  "decrypt": round(client_decrypt)},
        "key_distribution_ms": {"first_epoch": round(first_share_ms), "after_removal": round(rekey_ms),
                                "plain_send": round(plain_send_ms, 1),
                                "ratio_to_plain_send": round(rekey_ms / plain_send_ms, 1)},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.members, args.messages)), indent=2))


if __name__ == "__main__":
    main()
