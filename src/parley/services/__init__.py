"""The domain: accounts, sessions, contacts, conversations, messages, receipts.

Services open the transaction where a request enters them (``Database.transaction()``)
and emit events only after it commits (``parley.services.events``). They raise
``parley.errors`` and return plain records; ``api`` and ``gateway`` turn those into wire
payloads.
"""
