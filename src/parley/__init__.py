"""Parley: a self-hosted, real-time team chat server.

Layout (see DESIGN.md §2): ``api`` and ``gateway`` call ``services``; ``services`` call
``store``, ``bus``, ``media`` and ``jobs`` through small interfaces. ``app`` only wires.
"""

__version__ = "0.1.0"
