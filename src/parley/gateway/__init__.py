"""The real-time gateway: ``/ws`` sessions, the protocol, local fan-out, presence, typing.

DESIGN §2 "Real-time gateway protocol" is the specification; ``docs/protocol.md`` documents
every frame. Layout, one concept per module:

- ``protocol``  — every wire frame and method params model (with ``parley.wire``'s event
  types and close codes, the contract; ``schema`` writes it all to docs/protocol.schema.json);
- ``ports``     — :class:`~parley.gateway.ports.GatewayServices`, all the gateway calls
  outside itself (no container, no database);
- ``connection`` — one socket's state machine, reader, writer and deadlines; it sees its
  node only through the narrow ``connection.Host`` protocol;
- ``outbox``    — the bounded per-connection queue (backpressure, close 4009);
- ``handlers``  — the method table (``METHODS``: validation and dispatch, one row per method)
  and the handlers: call methods → service calls → JSON; they never touch the socket;
- ``hub``       — this node's sessions by user and conversation; the bus handler;
- ``router``    — service events → envelopes (serialised once) → the bus;
- ``presence``, ``typing_indicators``, ``receipt_throttle`` — the ephemeral parts;
  every node's presence counts are kept by a store from ``parley.presence``;
- ``node``      — :class:`~parley.gateway.node.Gateway`, composing all of the above;
- ``endpoint``  — the Starlette route; ``shutdown`` — 1001 on SIGTERM under uvicorn.
"""
