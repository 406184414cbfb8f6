"""Security primitives: password hashing and policy, tokens, rate limiting, HTTP headers.

Nothing here touches the database; ``services`` combine these with storage.
"""
