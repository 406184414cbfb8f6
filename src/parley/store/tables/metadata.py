"""The one ``MetaData`` every table belongs to, and the id type their keys share.

Ids are 26-character time-ordered strings (``parley.ids``). The naming convention gives
constraints and indexes the names the migrations use, whichever module defines the table.
"""

from __future__ import annotations

from sqlalchemy import MetaData, String

ID = String(26)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
