"""Integrations (DESIGN §6.6): bot accounts and their tokens, incoming and outgoing
webhooks, slash commands.

- ``bots``: bot accounts (users with ``is_bot``) owned by a user; one long-lived token each.
- ``bot_scope``: the part of the REST API a bot token may call.
- ``signing``: HMAC-SHA256 signatures of outgoing requests (``X-Parley-Signature``).
- ``webhooks``: managing webhooks, and incoming ones posting into their conversation.
- ``deliveries``: outgoing webhooks — after a message commits, signed POSTs as jobs, with
  retries, backoff, a delivery log and disabling after repeated failures.
- ``commands``: slash commands — built-ins and custom ones calling a registered URL.

Every request to a URL a user chose goes through ``parley.outbound`` (SSRF guard, limits).
"""
