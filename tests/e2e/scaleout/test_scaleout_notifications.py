"""Notifications on two ``parley serve`` nodes (PostgreSQL + Redis, nginx in front, no
stickiness): a user with no tab open gets exactly one Web Push per direct message and each
missed message in exactly one digest email, whichever node committed the message and
whichever node's job worker took the work — no duplicates across nodes. Both nodes sign
with the one configured VAPID key.

The push service is a stand-in on loopback (no internet here; ``tests/support/notify_helpers.py``);
the SMTP server is the real aiosmtpd. Both run in the test process; the nodes reach them
over loopback (``PARLEY_OUTBOUND_ALLOW_PRIVATE=true``).
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from parley.notifications.vapid import VapidKeys
from tests.support.gateway_helpers import new_user
from tests.support.notify_helpers import BrowserKeys, body_text, push_service, smtp_server
from tests.support.scaleout_helpers import eventually, running_cluster

EMAIL_DELAY = 2.0
MESSAGES = 6
SPACING = 0.8  # seconds between messages: more than the coalescing window, so one push each


async def test_two_nodes_notify_once(tmp_path: Path, empty_postgres_url: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    raw_key = base64.urlsafe_b64encode(private.private_numbers().private_value.to_bytes(32, "big"))
    vapid_key = raw_key.decode().rstrip("=")
    with smtp_server() as smtp:
        async with push_service() as pushes, running_cluster(
            tmp_path,
            empty_postgres_url,
            outbound_allow_private="true",
            vapid_private_key=vapid_key,
            push_delay_seconds=0.3,
            push_coalesce_seconds=0.4,
            smtp_url=smtp.url,
            smtp_starttls="off",
            public_url="https://chat.example.org",
            email_notify_delay_seconds=EMAIL_DELAY,
            email_digest_sweep_seconds=0.2,
        ) as cluster:
            pushes.server_key = VapidKeys(private, "mailto:ops@example.org").public_key
            alice = await new_user(cluster.base_url, "alice")
            bob = await new_user(cluster.base_url, "bob")
            try:
                # Both nodes hand out the same key (round-robin: two calls, two nodes).
                keys_seen = {
                    (await alice.request("GET", "/api/v1/push/vapid-public-key"))["public_key"]
                    for _ in range(4)
                }
                assert keys_seen == {pushes.server_key}

                browser = BrowserKeys()
                await bob.request(
                    "POST", "/api/v1/push/subscriptions", json=browser.subscription(pushes.endpoint("bob"))
                )
                await bob.request("PUT", "/api/v1/users/me/email", json={"address": "bob@example.org"})
                [verification] = await smtp.mailbox.wait_for(lambda m: "Confirm" in str(m["Subject"]))
                link = re.search(r"https://chat\.example\.org(/email/verify\?token=\S+)", body_text(verification))
                assert link
                async with httpx.AsyncClient(base_url=cluster.base_url) as http:
                    assert (await http.get(link.group(1))).status_code == 200

                dm = await alice.create_direct(bob.user_id)
                sent = []
                for number in range(MESSAGES):  # nginx alternates the nodes that commit them
                    sent.append(await alice.send_message(dm["id"], f"note {number}"))
                    await asyncio.sleep(SPACING)

                await pushes.wait_for("bob", MESSAGES)
                digests = await smtp.mailbox.wait_for(
                    lambda m: "unread" in str(m["Subject"]),
                    timeout=EMAIL_DELAY * 4 + MESSAGES * SPACING,
                )
                mailed: Counter[str] = Counter()

                async def all_mailed() -> Counter[str]:
                    mailed.clear()
                    for digest in [m for m in smtp.mailbox.messages if "unread" in str(m["Subject"])]:
                        mailed.update(re.findall(r"/m/([0-9A-Z]{26})", body_text(digest)))
                    return mailed

                await eventually(
                    all_mailed,
                    lambda found: set(found) == {m["id"] for m in sent},
                    timeout=EMAIL_DELAY * 4,
                    what="every message in a digest",
                )
                await asyncio.sleep(EMAIL_DELAY + 1.0)  # anything duplicated would be here by now

                pushed = [browser.decrypt(d.body)["message_id"] for d in pushes.for_token("bob")]
                assert sorted(pushed) == sorted(m["id"] for m in sent)  # one each, none twice
                assert pushes.refused == []
                mailed = await all_mailed()
                assert all(count == 1 for count in mailed.values()), mailed
                assert len(digests) >= 1
                sent_by_node = [
                    await cluster.metric(index, 'parley_notifications_sent_total{channel="push"}')
                    for index in range(2)
                ]
                assert sum(sent_by_node) == MESSAGES
                for digest in smtp.mailbox.messages[1:]:
                    assert urlsplit(digest["List-Unsubscribe"].strip("<>")).path == "/email/unsubscribe"
            finally:
                await alice.aclose()
                await bob.aclose()
