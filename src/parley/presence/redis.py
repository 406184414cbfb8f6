"""The :class:`~parley.presence.base.PresenceStore` on Redis (the contract and the
semantics are in ``presence.base``).

Keys, under ``<prefix>:presence:``:

- ``user:<user id>`` — a hash: one field per node, ``"<online> <away> <expires ms>"``,
  and ``_status``, the user's last reported combined status (absent: offline). The key
  itself expires a minute after its latest entry, so nothing outlives a dead cluster.
- ``expiry`` — a sorted set of ``"<user id> <node id>"`` by expiry time, so that any node
  finds what ran out without scanning users.

Every write goes through one Lua script that also recomputes the user's combined status
and compares it with ``_status``: scripts run atomically, so each change is decided once
and reported to exactly one caller in the whole cluster. Times come from Redis's own clock
(``TIME``), so nodes with skewed clocks agree on what expired.

The scripts touch keys they compute (``user:<id>``); Redis Cluster allows that only within
the slot of the keys a script declares. On a cluster (``shards > 1``) users are therefore
split into fixed groups (``PARLEY_REDIS_PRESENCE_GROUPS``, default :data:`CLUSTER_SHARDS`)
by a stable hash of their id, each group's
keys under one hash tag — ``{<prefix>:presence:<n>}:user:<id>`` and
``{<prefix>:presence:<n>}:expiry`` — so each script call stays on one slot, and the groups
spread over the cluster's primaries. A write of many users makes one call per group.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as redis

from parley.presence.base import Change, Entry, PresenceStatus

# Recomputes one user's status after dropping their expired entries; appends a change.
_SETTLE = """
local function settle(user, now, changes)
  local key = ARGV[1] .. user
  local fields = redis.call('HGETALL', key)
  local online, away, live, latest = 0, 0, 0, 0
  local announced = 'offline'
  for i = 1, #fields, 2 do
    local name, value = fields[i], fields[i + 1]
    if name == '_status' then
      announced = value
    else
      local o, a, e = string.match(value, '(%d+) (%d+) (%d+)')
      e = tonumber(e)
      if e <= now then
        redis.call('HDEL', key, name)
        redis.call('ZREM', KEYS[1], user .. ' ' .. name)
      else
        live = live + 1
        online = online + tonumber(o)
        away = away + tonumber(a)
        if e > latest then latest = e end
      end
    end
  end
  local status
  if online > 0 then status = 'online'
  elseif away > 0 then status = 'away'
  elseif live > 0 then status = nil
  else status = 'offline' end
  if live == 0 then
    redis.call('DEL', key)
  else
    redis.call('PEXPIRE', key, latest - now + 60000)
  end
  if status ~= nil and status ~= announced then
    if status ~= 'offline' then redis.call('HSET', key, '_status', status) end
    table.insert(changes, user)
    table.insert(changes, status)
  end
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local changes = {}
"""

# KEYS[1] expiry set; ARGV: user key prefix, node, then (user, online, away, ttl ms)...
PUT = (
    _SETTLE
    + """
local node = ARGV[2]
for i = 3, #ARGV, 4 do
  local user, ttl = ARGV[i], tonumber(ARGV[i + 3])
  local key = ARGV[1] .. user
  local member = user .. ' ' .. node
  if ttl > 0 then
    local expires = now + ttl
    redis.call('HSET', key, node, ARGV[i + 1] .. ' ' .. ARGV[i + 2] .. ' ' .. expires)
    redis.call('ZADD', KEYS[1], expires, member)
  else
    redis.call('HDEL', key, node)
    redis.call('ZREM', KEYS[1], member)
  end
  settle(user, now, changes)
end
return changes
"""
)

# KEYS[1] expiry set; ARGV: user key prefix, batch size. Returns how many entries were due,
# then the changes.
EXPIRE = (
    _SETTLE
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local seen = {}
for _, member in ipairs(due) do
  local user = string.match(member, '^(%S+) ')
  if user and not seen[user] then
    seen[user] = true
    settle(user, now, changes)
  end
  -- An entry whose hash field was already gone (the key was deleted) leaves no member.
  redis.call('ZREM', KEYS[1], member)
end
table.insert(changes, 1, #due)
return changes
"""
)

# User groups on Redis Cluster: enough to spread presence over a few dozen primaries; few
# enough that a node's expiry sweep (one call per group each second) stays cheap.
CLUSTER_SHARDS = 16

# Users per script call: bounded work inside Redis (scripts block it while they run).
PUT_CHUNK = 200
EXPIRE_BATCH = 500


def _decode(flat: list[Any]) -> list[Change]:
    text = [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
    return [
        Change(text[index], PresenceStatus(text[index + 1])) for index in range(0, len(text), 2)
    ]


class RedisPresenceStore:
    def __init__(
        self, client: redis.Redis, *, prefix: str, node_id: str, shards: int = 1
    ) -> None:
        self._client = client
        # (user key prefix, expiry set) per group; one group keeps the single-Redis names.
        if shards == 1:
            self._groups = [(f"{prefix}:presence:user:", f"{prefix}:presence:expiry")]
        else:
            tags = [f"{{{prefix}:presence:{n}}}" for n in range(shards)]
            self._groups = [(f"{tag}:user:", f"{tag}:expiry") for tag in tags]
        self._node = node_id
        self._put: Any = client.register_script(PUT)
        self._expire: Any = client.register_script(EXPIRE)

    def _group(self, user_id: str) -> tuple[str, str]:
        groups = self._groups
        if len(groups) == 1:
            return groups[0]
        # crc32, not hash(): every node must put a user in the same group.
        return groups[zlib.crc32(user_id.encode()) % len(groups)]

    async def put(self, entries: Mapping[str, Entry]) -> list[Change]:
        by_group: dict[tuple[str, str], list[tuple[str, Entry]]] = {}
        for user_id, entry in entries.items():
            by_group.setdefault(self._group(user_id), []).append((user_id, entry))
        changes: list[Change] = []
        for (user_prefix, expiry), items in by_group.items():
            for start in range(0, len(items), PUT_CHUNK):
                args: list[str | int] = [user_prefix, self._node]
                for user_id, entry in items[start : start + PUT_CHUNK]:
                    ttl_ms = max(0, round(entry.ttl_seconds * 1000))
                    args += [user_id, entry.online, entry.away, ttl_ms]
                changes += _decode(await self._put(keys=[expiry], args=args))
        return changes

    async def expire(self) -> list[Change]:
        changes: list[Change] = []
        for user_prefix, expiry in self._groups:
            while True:
                due, *flat = await self._expire(keys=[expiry], args=[user_prefix, EXPIRE_BATCH])
                changes += _decode(flat)
                if int(due) < EXPIRE_BATCH:  # a full batch may have left more behind
                    break
        return changes

    async def statuses(self, user_ids: Iterable[str]) -> dict[str, PresenceStatus]:
        ids = list(dict.fromkeys(user_ids))
        if not ids:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for user_id in ids:
            pipe.hget(self._group(user_id)[0] + user_id, "_status")
        values = await pipe.execute()
        return {
            user_id: PresenceStatus(value.decode())
            for user_id, value in zip(ids, values, strict=True)
            if value is not None
        }

    async def close(self) -> None:
        pass
