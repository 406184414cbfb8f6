"""End-to-end encryption routes (DESIGN §6.1): devices and keys, claims, the to-device
inbox, the key backup. The server sees public keys and ciphertext only (docs/e2ee.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field

from parley.api.deps import Caller, RequestModel, Services
from parley.fields import DeviceId, Id
from parley.services.e2ee_devices import IdentityKeys, OneTimePrekey, SignedPrekey
from parley.services.e2ee_inbox import MAX_BATCH, MAX_PAGE, Outgoing

router = APIRouter(prefix="/api/v1", tags=["e2ee"])

KEY = 100  # parsing caps; the exact shapes are checked by parley.e2ee.formats
SIGNATURE = 200


class IdentityKeysBody(RequestModel):
    signing_key: str = Field(max_length=KEY)
    identity_key: str = Field(max_length=KEY)
    signature: str = Field(max_length=SIGNATURE)


class SignedPrekeyBody(RequestModel):
    key_id: int
    public_key: str = Field(max_length=KEY)
    signature: str = Field(max_length=SIGNATURE)


class OneTimePrekeyBody(RequestModel):
    key_id: int
    public_key: str = Field(max_length=KEY)


class KeysBody(RequestModel):
    identity_keys: IdentityKeysBody | None = None
    signed_prekey: SignedPrekeyBody | None = None
    one_time_prekeys: list[OneTimePrekeyBody] = Field(default=[], max_length=10_000)
    display_name: str | None = Field(default=None, max_length=200)


class DeviceRef(RequestModel):
    user_id: Id
    device_id: DeviceId


class ClaimBody(RequestModel):
    devices: list[DeviceRef] = Field(default=[], max_length=1000)
    user_ids: list[Id] = Field(default=[], max_length=1000)


@router.put("/devices/{device_id}/keys")
async def upload_keys(
    device_id: DeviceId, body: KeysBody, caller: Caller, services: Services
) -> dict[str, Any]:
    """Register the calling session's device, rotate its signed prekey, add one-time
    prekeys. The device then belongs to this session: logging it out deactivates it."""
    identity = body.identity_keys
    prekey = body.signed_prekey
    return await services.e2ee_devices.upload(
        caller.user_id,
        caller.session_id,
        device_id,
        identity_keys=IdentityKeys(identity.signing_key, identity.identity_key, identity.signature)
        if identity
        else None,
        signed_prekey=SignedPrekey(prekey.key_id, prekey.public_key, prekey.signature)
        if prekey
        else None,
        one_time_prekeys=[OneTimePrekey(k.key_id, k.public_key) for k in body.one_time_prekeys],
        display_name=body.display_name,
    )


@router.get("/devices")
async def my_devices(caller: Caller, services: Services) -> dict[str, Any]:
    return {"devices": await services.e2ee_devices.list_for(caller.user_id)}


@router.delete("/devices/{device_id}", status_code=204)
async def remove_device(device_id: DeviceId, caller: Caller, services: Services) -> Response:
    """Remove one of your devices: it gets no more keys or to-device messages."""
    await services.e2ee_devices.remove(caller.user_id, device_id)
    return Response(status_code=204)


@router.get("/users/{user_id}/devices")
async def user_devices(user_id: Id, caller: Caller, services: Services) -> dict[str, Any]:
    """A user's active devices and public keys (verification, safety numbers)."""
    return {"devices": await services.e2ee_devices.list_for(user_id)}


@router.post("/keys/claim")
async def claim_keys(body: ClaimBody, caller: Caller, services: Services) -> dict[str, Any]:
    """One prekey bundle per device, each consuming one one-time prekey."""
    return await services.e2ee_devices.claim(
        [(d.user_id, d.device_id) for d in body.devices], body.user_ids
    )


class QueryBody(RequestModel):
    user_ids: list[Id] = Field(min_length=1, max_length=1000)


@router.post("/keys/query")
async def query_keys(body: QueryBody, caller: Caller, services: Services) -> dict[str, Any]:
    """Many users' devices in one request: ``{devices: {user_id: [device, ...]}}``."""
    return {"devices": await services.e2ee_devices.list_many(body.user_ids)}


@router.get("/keys/count")
async def count_keys(
    caller: Caller,
    services: Services,
    device_id: Annotated[DeviceId | None, Query()] = None,
) -> dict[str, Any]:
    return await services.e2ee_devices.count(caller.user_id, caller.session_id, device_id)


# --- the to-device inbox


class ToDeviceMessage(RequestModel):
    user_id: Id
    device_id: str = Field(max_length=200)
    message_id: str = Field(max_length=200)
    ciphertext: str = Field(max_length=1_000_000)


class ToDeviceBody(RequestModel):
    messages: list[ToDeviceMessage] = Field(max_length=MAX_BATCH)
    # The sending device; default: the device of the calling session.
    sender_device_id: DeviceId | None = None


class AckBody(RequestModel):
    ids: list[Id] = Field(max_length=MAX_PAGE * 4)


@router.post("/to-device")
async def send_to_device(body: ToDeviceBody, caller: Caller, services: Services) -> dict[str, Any]:
    """Pairwise ciphertexts into device inboxes; pushed as ``to_device`` events."""
    return await services.e2ee_inbox.send(
        caller.user_id,
        caller.session_id,
        [Outgoing(m.user_id, m.device_id, m.message_id, m.ciphertext) for m in body.messages],
        body.sender_device_id,
    )


@router.get("/to-device")
async def pending_to_device(
    caller: Caller,
    services: Services,
    device_id: Annotated[DeviceId, Query()],
    after_id: Annotated[Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> dict[str, Any]:
    """The device's unacknowledged messages, oldest first."""
    return await services.e2ee_inbox.pending(caller.user_id, device_id, after_id=after_id, limit=limit)


@router.post("/to-device/ack")
async def ack_to_device(body: AckBody, caller: Caller, services: Services) -> dict[str, Any]:
    """Delete delivered messages (the ``id`` of each, as pushed)."""
    return await services.e2ee_inbox.ack(caller.user_id, body.ids)


# --- the key backup


class BackupBody(RequestModel):
    # Opaque to the server: the client's encrypted backup (docs/e2ee.md "Key backup").
    data: str = Field(max_length=2_000_000)
    # Replace only this version (0: only if there is none yet); unset: unconditionally.
    if_version: int | None = Field(default=None, ge=0, le=2**53)


@router.get("/key-backup")
async def get_backup(caller: Caller, services: Services) -> dict[str, Any]:
    return {"backup": await services.e2ee_backups.get(caller.user_id)}


@router.put("/key-backup")
async def put_backup(body: BackupBody, caller: Caller, services: Services) -> dict[str, Any]:
    return {"backup": await services.e2ee_backups.put(caller.user_id, body.data, body.if_version)}


@router.delete("/key-backup", status_code=204)
async def delete_backup(caller: Caller, services: Services) -> Response:
    await services.e2ee_backups.delete(caller.user_id)
    return Response(status_code=204)
