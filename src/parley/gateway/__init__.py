"""The real-time gateway: ``/ws`` sessions, the protocol, local fan-out, presence, typing.

DESIGN §2 "Real-time gateway protocol" is the specification; ``docs/protocol.md`` documents
every frame. Layout, one concept per module:

- ``protocol``  — every wire frame, method params model and close code (the contract);
- ``connection`` — one socket's state machine, reader, writer and deadlines;
- ``outbox``    — the bounded per-connection queue (backpressure, close 4009);
- ``handlers``  — call methods → service calls; they never touch the socket;
- ``hub``       — this node's sessions by user and conversation; the bus handler;
- ``router``    — service events → envelopes (serialised once) → the bus;
- ``presence``, ``typing_indicators``, ``receipt_throttle`` — the ephemeral parts;
  every node's presence counts are kept by a store from ``parley.presence``;
- ``node``      — :class:`~parley.gateway.node.Gateway`, composing all of the above;
- ``endpoint``  — the Starlette route; ``shutdown`` — 1001 on SIGTERM under uvicorn.
"""
