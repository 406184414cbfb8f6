"""Search tests on both ways PostgreSQL finds hits (``parley.services.search_postgres``):
walking the caller's newest messages, or through the indexes. Test data is so small that the
walk always sees all of it, so the index statements would never answer a test.

``backend`` here replaces the conftest fixture in the search test modules that import it:
SQLite, PostgreSQL as configured, and PostgreSQL with the walk cut to one candidate at a
time, so that (nearly) every hit is found through the indexes — and the boundaries between
a walk and the index statement after it are crossed on every page.
"""

from __future__ import annotations

import pytest

from parley.services import search_postgres

BACKENDS_AND_SHAPES = ["sqlite", "postgres", "postgres-indexes"]


@pytest.fixture(params=BACKENDS_AND_SHAPES, ids=BACKENDS_AND_SHAPES)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "postgres-indexes":
        monkeypatch.setattr(search_postgres, "WALK_PROBE", 1)
        monkeypatch.setattr(search_postgres, "WALK_LIMIT", 1)
        return "postgres"
    return str(request.param)
