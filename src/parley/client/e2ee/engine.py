"""End-to-end encryption for one SDK client (DESIGN §6.1, docs/e2ee.md).

:class:`E2ee` registers this device, keeps its prekeys topped up, shares sender keys with
every member device of an encrypted conversation over pairwise channels, and encrypts and
decrypts conversation messages. ``ParleyClient.enable_e2ee`` wires it in, after which
``send_message``, ``history``, ``changes`` and realtime events are encrypted and decrypted
transparently.

Trust: device lists come from the server. A device's keys are self-signed, and the first
keys seen for a (user, device) are remembered; a later change is refused and recorded in
``identity_changes`` (shown by ``parley chat devices``), and safety numbers let two people
compare out of band what their clients use.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parley.client.e2ee import device as dev
from parley.client.e2ee import pairwise, x3dh
from parley.client.e2ee import primitives as p
from parley.client.e2ee.pairwise import PairwiseSession
from parley.client.e2ee.safety import safety_number
from parley.client.e2ee.sender_keys import InboundSession, OutboundSession
from parley.client.e2ee.store import DeviceStore
from parley.client.errors import ApiError
from parley.client.tracker import RealtimeEvent
from parley.e2ee import formats
from parley.e2ee.formats import b64decode, b64encode

if TYPE_CHECKING:
    from parley.client.rest import ParleyClient

JSON = dict[str, Any]
TO_DEVICE_CHUNK = 500
CLAIM_CHUNK = 1000  # devices per claim (the server's limit)
MAX_PROCESSED = 2000


def _peer(user_id: str, device_id: str) -> str:
    return f"{user_id}|{device_id}"


def _inbound_key(conversation_id: str, user_id: str, device_id: str, session_id: str) -> str:
    return f"{conversation_id}|{user_id}|{device_id}|{session_id}"


class E2ee:
    def __init__(
        self,
        client: ParleyClient,
        state_dir: Path,
        *,
        device_id: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self._client = client
        self._store = DeviceStore(state_dir, client.base_url, client.user_id)
        self._wanted_device_id = device_id
        self._display_name = display_name
        self.device_id = ""
        self._encrypted: dict[str, bool] = {}
        self._requested: set[str] = set()  # sessions whose keys were asked for this run

    @property
    def user_id(self) -> str:
        return self._client.user_id

    # --- setup

    async def start(self) -> None:
        """Create (first run) or load the device, upload its keys and replenish prekeys."""
        with self._store.transaction() as state:
            if not state:
                dev.create(state, self.user_id, self._wanted_device_id or dev.new_device_id())
            self.device_id = state["device_id"]
            body: JSON = {"identity_keys": dev.identity_keys(state)}
            rotated = dev.rotate_signed_prekey_if_due(state)
            body["signed_prekey"] = rotated or dev.signed_prekey(state)
            if not state["uploaded"]:
                body["one_time_prekeys"] = dev.generate_one_time_prekeys(state, dev.PREKEY_BATCH)
            if self._display_name is not None:
                body["display_name"] = self._display_name
        # Upload outside the lock; the private halves are on disk before the server has
        # the public ones, so no prekey handed out is ever unknown here.
        answer = await self._client.request("PUT", f"/api/v1/devices/{self.device_id}/keys", json=body)
        with self._store.transaction() as state:
            state["uploaded"] = True
        await self.replenish(answer["one_time_prekey_count"])

    async def replenish(self, count: int | None = None) -> None:
        if count is None:
            count = (
                await self._client.request("GET", "/api/v1/keys/count", params={"device_id": self.device_id})
            )["one_time_prekeys"]
        if count >= dev.LOW_WATERMARK:
            return
        with self._store.transaction() as state:
            fresh = dev.generate_one_time_prekeys(state, dev.PREKEY_BATCH)
        await self._client.request(
            "PUT", f"/api/v1/devices/{self.device_id}/keys", json={"one_time_prekeys": fresh}
        )

    # --- devices and trust

    async def user_devices(self, user_id: str) -> list[JSON]:
        """The user's devices whose self-signatures verify and whose keys did not change
        since first seen (changed ones are recorded and left out)."""
        return (await self.devices_of([user_id]))[user_id]

    async def devices_of(self, user_ids: Sequence[str]) -> dict[str, list[JSON]]:
        """``user_devices`` for many users in one request (``POST /api/v1/keys/query``)."""
        listed: dict[str, list[JSON]] = {}
        wanted = sorted(set(user_ids))
        for start in range(0, len(wanted), 1000):
            answer = await self._client.request(
                "POST", "/api/v1/keys/query", json={"user_ids": wanted[start : start + 1000]}
            )
            listed |= answer["devices"]
        good: dict[str, list[JSON]] = {uid: [] for uid in wanted}
        with self._store.transaction() as state:
            for user_id, devices in listed.items():
                for raw in devices:
                    known = state["known_devices"].get(_peer(raw["user_id"], raw["device_id"]))
                    # Keys seen before were verified then; only new ones are verified now
                    # (the claimed bundle's signed prekey is verified when a session starts).
                    if known is None or known["identity_key"] != raw["identity_keys"]["identity_key"]:
                        try:
                            x3dh.Bundle.from_json(raw | {"one_time_prekey": None}).verify()
                        except (x3dh.BundleError, formats.FormatError, KeyError, ValueError):
                            continue
                    if self._remember(state, raw):
                        good.setdefault(user_id, []).append(raw)
        return good

    @staticmethod
    def _remember(state: JSON, raw: JSON) -> bool:
        key = _peer(raw["user_id"], raw["device_id"])
        keys = raw["identity_keys"]
        known = state["known_devices"].get(key)
        if known is None:
            state["known_devices"][key] = {
                "signing_key": keys["signing_key"],
                "identity_key": keys["identity_key"],
                "first_seen": time.time(),
            }
            return True
        if known["signing_key"] == keys["signing_key"] and known["identity_key"] == keys["identity_key"]:
            return True
        change = {"user_id": raw["user_id"], "device_id": raw["device_id"], "seen_at": time.time()}
        if change not in state["identity_changes"][-20:]:
            state["identity_changes"].append(change)
        return False

    async def safety_number(self, user_id: str) -> str:
        mine = await self.user_devices(self.user_id)
        theirs = await self.user_devices(user_id)

        def keys(devices: list[JSON]) -> list[bytes]:
            return [b64decode(d["identity_keys"]["signing_key"]) for d in devices]

        return safety_number(self.user_id, keys(mine), user_id, keys(theirs))

    def identity_changes(self) -> list[JSON]:
        state = self._store.read() or {}
        return list(state.get("identity_changes", []))

    # --- conversations

    async def is_encrypted(self, conversation_id: str) -> bool:
        if not self._encrypted.get(conversation_id):  # it can switch on, never off
            conversation = await self._client.conversation(conversation_id)
            self._encrypted[conversation_id] = bool(conversation.get("encrypted"))
        return self._encrypted[conversation_id]

    def note_conversation(self, conversation: JSON) -> None:
        if conversation.get("encrypted"):
            self._encrypted[str(conversation["id"])] = True

    async def encrypt(self, conversation_id: str, text: str, attachments: Sequence[JSON] = ()) -> JSON:
        """``{ciphertext, e2ee}`` for a message, after sharing the sender key as needed."""
        await self._ensure_shared(conversation_id)
        payload: JSON = {"body": text}
        if attachments:
            payload["attachments"] = list(attachments)
        plaintext = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        with self._store.transaction() as state:
            session = OutboundSession.from_json(state["outbound"][conversation_id])
            ciphertext, envelope = session.encrypt(self.user_id, self.device_id, plaintext)
            state["outbound"][conversation_id] = session.to_json()
        return {"ciphertext": ciphertext, "e2ee": envelope}

    async def _ensure_shared(self, conversation_id: str) -> None:
        # Members are read afresh for every send: a removal must start a new epoch at once.
        members = {m["user_id"] for m in await self._client.members(conversation_id)}
        devices = [d for found in (await self.devices_of(sorted(members))).values() for d in found]
        targets = {(d["user_id"], d["device_id"]) for d in devices} - {(self.user_id, self.device_id)}
        with self._store.transaction() as state:
            raw = state["outbound"].get(conversation_id)
            session = OutboundSession.from_json(raw) if raw else None
            if (
                session is None
                or session.expired()
                or bool(session.members - members)  # someone left or was removed: new epoch
                or bool(session.shared_with - targets)  # a device went away
            ):
                session = OutboundSession.create(conversation_id, members)
                own = InboundSession.from_export(self.user_id, self.device_id, session.export())
                state["inbound"][
                    _inbound_key(conversation_id, self.user_id, self.device_id, own.session_id)
                ] = own.to_json()
            session.members = set(members)
            missing = sorted(targets - session.shared_with)
            state["outbound"][conversation_id] = session.to_json()
            export = session.export()
        if missing:
            delivered = await self._send_to_devices(missing, {"type": "sender_key", "content": export})
            with self._store.transaction() as state:
                current = OutboundSession.from_json(state["outbound"][conversation_id])
                if current.session_id == export["session_id"]:
                    current.shared_with |= delivered
                    state["outbound"][conversation_id] = current.to_json()

    async def rotate(self, conversation_id: str) -> None:
        """Start a new epoch at the next send (a member left; a device was removed)."""
        with self._store.transaction() as state:
            state["outbound"].pop(conversation_id, None)

    # --- pairwise channels

    async def _send_to_devices(self, targets: Iterable[tuple[str, str]], content: JSON) -> set[tuple[str, str]]:
        """Encrypt ``content`` for each device over its pairwise session (claiming bundles
        to start the missing ones) and post them; the devices that got it."""
        targets = sorted(set(targets))
        with self._store.transaction() as state:
            without = [t for t in targets if not state["pairwise"].get(_peer(*t))]
        if without:
            await self._start_sessions(without)
        messages: list[JSON] = []
        with self._store.transaction() as state:
            own_identity = p.x25519_public(dev.identity_private(state))
            for user_id, device_id in targets:
                stored = state["pairwise"].get(_peer(user_id, device_id))
                if not stored:
                    continue  # no bundle: the device vanished
                sessions = [PairwiseSession.from_json(s) for s in stored]
                session = sessions[0]
                inner = {
                    "sender_user_id": self.user_id,
                    "sender_device_id": self.device_id,
                    "recipient_user_id": user_id,
                    "recipient_device_id": device_id,
                    "recipient_identity_key": b64encode(session.peer_identity),
                } | content
                ciphertext = session.encrypt(own_identity, json.dumps(inner, separators=(",", ":")).encode())
                state["pairwise"][_peer(user_id, device_id)] = [s.to_json() for s in sessions]
                messages.append(
                    {
                        "user_id": user_id,
                        "device_id": device_id,
                        "message_id": secrets.token_hex(16),
                        "ciphertext": ciphertext,
                    }
                )
        delivered: set[tuple[str, str]] = set()
        for start in range(0, len(messages), TO_DEVICE_CHUNK):
            chunk = messages[start : start + TO_DEVICE_CHUNK]
            answer = await self._client.request(
                "POST",
                "/api/v1/to-device",
                json={"messages": chunk, "sender_device_id": self.device_id},
            )
            delivered |= {(s["user_id"], s["device_id"]) for s in answer["sent"]}
        return delivered

    async def _start_sessions(self, targets: Sequence[tuple[str, str]]) -> None:
        bundles: list[JSON] = []
        for start in range(0, len(targets), CLAIM_CHUNK):
            claimed = await self._client.request(
                "POST",
                "/api/v1/keys/claim",
                json={"devices": [{"user_id": u, "device_id": d} for u, d in targets[start : start + CLAIM_CHUNK]]},
            )
            bundles.extend(claimed["bundles"])
        with self._store.transaction() as state:
            identity = dev.identity_private(state)
            for raw in bundles:
                try:
                    bundle = x3dh.Bundle.from_json(raw)
                    if not self._remember(state, raw):
                        continue
                    session = PairwiseSession.initiate(identity, bundle)
                except (x3dh.BundleError, formats.FormatError, p.DecryptionError):
                    continue
                key = _peer(bundle.user_id, bundle.device_id)
                state["pairwise"][key] = [session.to_json()] + state["pairwise"].get(key, [])

    async def sync_inbox(self) -> int:
        """Read and acknowledge this device's to-device inbox; how many were read."""
        read = 0
        while True:
            try:
                page = await self._client.request(
                    "GET", "/api/v1/to-device", params={"device_id": self.device_id}
                )
            except ApiError as exc:
                if exc.status == 404:  # this device was removed: nothing comes to it any more
                    return read
                raise
            if not page["messages"]:
                return read
            await self.receive_to_device(page["messages"])
            read += len(page["messages"])
            if not page["has_more"]:
                return read

    async def receive_to_device(self, messages: Sequence[JSON]) -> None:
        """Decrypt and apply pushed or fetched to-device messages, then acknowledge them
        (also those that fail: a message that cannot be read now never will be)."""
        devices = await self.devices_of(sorted({m["sender_id"] for m in messages}))
        answers: list[tuple[tuple[str, str], JSON]] = []
        with self._store.transaction() as state:
            for message in messages:
                if message["id"] in state["processed"]:
                    continue
                try:
                    answer = self._receive_one(state, message, devices.get(message["sender_id"], []))
                except (p.DecryptionError, formats.FormatError, KeyError, ValueError, TypeError):
                    answer = None  # unreadable: dropped (docs/e2ee.md "Failure")
                if answer is not None:
                    answers.append(((message["sender_id"], message["sender_device_id"]), answer))
                state["processed"] = (state["processed"] + [message["id"]])[-MAX_PROCESSED:]
        await self._client.request("POST", "/api/v1/to-device/ack", json={"ids": [m["id"] for m in messages]})
        for target, content in answers:  # keys our own other devices asked for
            await self._send_to_devices([target], content)
        await self.replenish()

    def _receive_one(self, state: JSON, message: JSON, sender_devices: list[JSON]) -> JSON | None:
        """Apply one to-device message; what to answer its sender, if anything."""
        wire = pairwise.parse_wire(message["ciphertext"])
        sender, sender_device = message["sender_id"], message["sender_device_id"]
        sender_key = b64decode(wire["sender_key"])
        listed = next((d for d in sender_devices if d["device_id"] == sender_device), None)
        if listed is None or b64decode(listed["identity_keys"]["identity_key"]) != sender_key:
            raise p.DecryptionError("the sender's identity key is not the listed one")
        key = _peer(sender, sender_device)
        sessions = [PairwiseSession.from_json(s) for s in state["pairwise"].get(key, [])]
        plaintext = None
        for session in sessions:
            if session.peer_identity != sender_key:
                continue
            if wire.get("prekey") and b64decode(wire["prekey"]["ephemeral_key"]) != session.base_key:
                continue
            try:
                plaintext = session.decrypt(wire)
                break
            except p.DecryptionError:
                continue
        if plaintext is None:
            prekey = wire.get("prekey")
            if not prekey:
                raise p.DecryptionError("no session for this message")
            session = PairwiseSession.respond(
                dev.identity_private(state),
                dev.signed_prekey_private(state, int(prekey["signed_prekey_id"])),
                dev.take_one_time_prekey(state, prekey.get("one_time_prekey_id")),
                sender_key,
                b64decode(prekey["ephemeral_key"]),
            )
            plaintext = session.decrypt(wire)
            sessions.append(session)
        state["pairwise"][key] = [s.to_json() for s in pairwise.ordered(sessions)]
        inner = json.loads(plaintext)
        if (
            inner.get("sender_user_id") != sender
            or inner.get("sender_device_id") != sender_device
            or inner.get("recipient_user_id") != self.user_id
            or inner.get("recipient_device_id") != self.device_id
        ):
            raise p.DecryptionError("the message names another sender or recipient")
        kind, content = inner.get("type"), inner.get("content") or {}
        if kind == "sender_key":
            self._store_inbound(state, InboundSession.from_export(sender, sender_device, content))
        elif sender == self.user_id and kind == "forwarded_key":
            # Only our own devices forward keys (of anyone's sessions): the messages stay
            # signed by their real sender, so a forwarded key can only fail, never forge.
            origin_user, origin_device = str(content["sender_user_id"]), str(content["sender_device_id"])
            formats.check_device_id(origin_device)
            self._store_inbound(state, InboundSession.from_export(origin_user, origin_device, content))
        elif sender == self.user_id and kind == "key_request":
            slot = _inbound_key(
                str(content["conversation_id"]),
                str(content["sender_user_id"]),
                str(content["sender_device_id"]),
                str(content["session_id"]),
            )
            held = state["inbound"].get(slot)
            if held is not None:
                inbound = InboundSession.from_json(held)
                return {
                    "type": "forwarded_key",
                    "content": {
                        "conversation_id": inbound.conversation_id,
                        "sender_user_id": inbound.sender_user_id,
                        "sender_device_id": inbound.sender_device_id,
                        "session_id": inbound.session_id,
                        "index": inbound.first_index,
                        "chain_key": b64encode(inbound.first_chain_key),
                    },
                }
        return None

    @staticmethod
    def _store_inbound(state: JSON, shared: InboundSession) -> None:
        slot = _inbound_key(shared.conversation_id, shared.sender_user_id, shared.sender_device_id, shared.session_id)
        if slot in state["inbound"]:
            existing = InboundSession.from_json(state["inbound"][slot])
            existing.merge(shared)
            shared = existing
        state["inbound"][slot] = shared.to_json()

    async def request_keys(self, messages: Iterable[JSON]) -> int:
        """Ask this user's other devices for the keys of these (undecryptable) messages;
        each session is asked for once per run. How many requests went out."""
        wanted: dict[str, JSON] = {}
        for message in messages:
            envelope = message.get("e2ee") or {}
            if not envelope or message.get("decrypted") is not False:
                continue
            slot = _inbound_key(
                message["conversation_id"], message["sender_id"], envelope["sender_device_id"], envelope["session_id"]
            )
            if slot not in self._requested:
                wanted[slot] = {
                    "conversation_id": message["conversation_id"],
                    "sender_user_id": message["sender_id"],
                    "sender_device_id": envelope["sender_device_id"],
                    "session_id": envelope["session_id"],
                }
        if not wanted:
            return 0
        own = [(self.user_id, d["device_id"]) for d in await self.user_devices(self.user_id)]
        others = [t for t in own if t[1] != self.device_id]
        sent = 0
        for slot, content in wanted.items():
            self._requested.add(slot)
            if not others:
                continue
            try:
                await self._send_to_devices(others, {"type": "key_request", "content": content})
            except ApiError:  # best effort (this device may have been removed): reads go on
                continue
            sent += 1
        return sent

    # --- decrypting conversation messages

    async def decrypt_message(self, message: JSON) -> JSON:
        """The message with ``content`` set to its plaintext (and ``decrypted``: true), or
        with ``decryption_error`` when it cannot be read. Plain messages pass unchanged."""
        return (await self.decrypt_messages([message]))[0]

    async def decrypt_messages(self, messages: Iterable[JSON]) -> list[JSON]:
        """``decrypt_message`` for a page, under one lock and one write of the state; a
        key missing makes the inbox be read once, then those messages are tried again."""
        page = list(messages)
        results = self._decrypt_page(page)
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            await self.sync_inbox()  # the keys may be waiting in the inbox
            retried = self._decrypt_page([page[i] for i in missing])
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
        final = [
            r if r is not None else page[i] | {"decrypted": False, "decryption_error": "no key for this message"}
            for i, r in enumerate(results)
        ]
        if any(r is None for r in results):
            # Still missing: our other devices may hold them (they answer when they read
            # their inbox; the message decrypts when read again).
            await self.request_keys([final[i] for i, r in enumerate(results) if r is None])
        return final

    def _decrypt_page(self, page: list[JSON]) -> list[JSON | None]:
        """Each message decrypted, failed (with the reason), or None when no key is held."""
        results: list[JSON | None] = []
        with self._store.transaction() as state:
            for message in page:
                envelope, ciphertext = message.get("e2ee"), message.get("ciphertext")
                if not envelope or not ciphertext:
                    results.append(message)
                    continue
                try:
                    payload = self._decrypt(state, message, envelope, ciphertext)
                except KeyError:
                    results.append(None)
                    continue
                except (p.DecryptionError, ValueError, TypeError) as exc:
                    results.append(message | {"decrypted": False, "decryption_error": str(exc)})
                    continue
                results.append(
                    message
                    | {
                        "content": str(payload.get("body", "")),
                        "e2ee_attachments": payload.get("attachments", []),
                        "decrypted": True,
                    }
                )
        return results

    @staticmethod
    def _decrypt(state: JSON, message: JSON, envelope: JSON, ciphertext: str) -> JSON:
        slot = _inbound_key(
            message["conversation_id"], message["sender_id"], envelope["sender_device_id"], envelope["session_id"]
        )
        raw = state["inbound"].get(slot)
        if raw is None:
            raise KeyError(slot)
        session = InboundSession.from_json(raw)
        plaintext = session.decrypt(envelope, ciphertext, message.get("id"))
        state["inbound"][slot] = session.to_json()
        payload = json.loads(plaintext)
        if not isinstance(payload, dict):
            raise ValueError("not a message payload")
        return payload

    # --- key backup

    async def back_up_keys(self, passphrase: str) -> int:
        """Upload every conversation key this device holds, sealed with ``passphrase``
        (merged with what the backup already had); the backup's new version."""
        from parley.client.e2ee.backup import seal, unseal

        sessions: dict[str, Any] = {}
        current = 0
        try:
            existing = (await self._client.request("GET", "/api/v1/key-backup"))["backup"]
            current = int(existing["version"])
            sessions = unseal(passphrase, existing["data"]).get("inbound", {})
        except ApiError as exc:
            if exc.status != 404:
                raise
        state = self._store.read() or {}
        for slot, raw in state.get("inbound", {}).items():
            mine = InboundSession.from_json(raw)
            mine.seen = {}
            if slot in sessions:
                kept = InboundSession.from_json(sessions[slot])
                kept.merge(mine)
                mine = kept
            sessions[slot] = mine.to_json()
        blob = seal(passphrase, {"inbound": sessions})
        answer = await self._client.request(
            "PUT", "/api/v1/key-backup", json={"data": blob, "if_version": current}
        )
        return int(answer["backup"]["version"])

    async def restore_keys(self, passphrase: str) -> int:
        """Add the backup's conversation keys to this device; how many sessions it had."""
        from parley.client.e2ee.backup import unseal

        existing = (await self._client.request("GET", "/api/v1/key-backup"))["backup"]
        sessions = unseal(passphrase, existing["data"]).get("inbound", {})
        with self._store.transaction() as state:
            for slot, raw in sessions.items():
                restored = InboundSession.from_json(raw)
                if slot in state["inbound"]:
                    mine = InboundSession.from_json(state["inbound"][slot])
                    mine.merge(restored)
                    restored = mine
                state["inbound"][slot] = restored.to_json()
        return len(sessions)

    async def handle_event(self, event: RealtimeEvent) -> RealtimeEvent:
        """A realtime event as the application should see it: ``to_device`` messages for
        this device are applied (and acknowledged); messages are decrypted; membership
        losses start a new epoch; a device change forgets who has our keys."""
        data = event.data
        if event.type == "to_device":
            if data.get("device_id") == self.device_id:
                await self.receive_to_device(list(data.get("messages", [])))
            return event
        if event.type in ("member.removed", "member.left") and event.conversation_id:
            await self.rotate(event.conversation_id)
        if event.type == "conversation.updated" and (data.get("changes") or {}).get("encrypted"):
            if event.conversation_id:
                self._encrypted[event.conversation_id] = True
        message = event.message
        if message is not None and message.get("e2ee"):
            return RealtimeEvent(event.type, data | {"message": await self.decrypt_message(message)}, event.replayed)
        return event
