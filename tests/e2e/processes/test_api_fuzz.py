"""Property-based fuzzing of every REST operation with schemathesis, against the real
``parley serve`` process: no 5xx, every documented status, every error in the standard body.

The schema is Parley's own OpenAPI document; requests carry a real user's token so that
authenticated routes are exercised past the authentication check.

Every generated request is also sent poisoned: each string of its JSON body and of its
query holding a NUL, and each string of its body an unpaired surrogate (``"\ud800"``,
which JSON can escape and UTF-8 cannot encode; schemathesis itself never generates one).
Those must be refused with a 4xx in the standard body, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from parley.app import create_app
from parley.config import Settings
from tests.conftest import TEST_PASSWORD
from tests.support.free_ports import free_port
from tests.support.server_process import ServerProcess

# Each operation gets this many generated requests; enough to find shape errors, small
# enough to keep the whole run within a minute on two cores.
EXAMPLES_PER_OPERATION = 12

schema = schemathesis.openapi.from_dict(
    create_app(Settings(secret_key="x" * 48, data_dir=Path("/nonexistent"))).openapi()
)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    directory = tmp_path_factory.mktemp("fuzz")
    env = {
        "PARLEY_DATA_DIR": str(directory / "data"),
        "PARLEY_DATABASE_URL": f"sqlite:///{directory / 'fuzz.db'}",
        "PARLEY_ARGON2_MEMORY_KIB": "1024",
        "PARLEY_ARGON2_TIME_COST": "1",
        "PARLEY_ACCESS_LOG": "false",
        "PARLEY_API_RATE_PER_SECOND": "100000",
        "PARLEY_API_BURST": "100000",
        "PARLEY_REGISTRATIONS_PER_ADDRESS": "1000000",
        "PARLEY_LOGIN_ADDRESS_FAILURES_ALLOWED": "1000000",
        "PARLEY_MESSAGE_RATE_PER_SECOND": "100000",
        "PARLEY_MESSAGE_BURST": "100000",
        "PARLEY_LOGIN_FAILURES_ALLOWED": "100000",
        "PARLEY_LOG_LEVEL": "warning",
    }
    port = free_port()
    with ServerProcess(port, env, directory) as server:
        with httpx.Client(base_url=server.base_url) as http:
            http.post("/api/v1/auth/register", json={"username": "fuzzer", "password": TEST_PASSWORD})
            login = http.post(
                "/api/v1/auth/login", json={"username": "fuzzer", "password": TEST_PASSWORD}
            ).json()
        yield server.base_url, {"Authorization": f"Bearer {login['access_token']}"}
        log = server.log()
    assert "Traceback" not in log, log[-5000:]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation(case: Any, fuzz_server: tuple[str, dict[str, str]]) -> None:
    base_url, auth = fuzz_server
    if case.path in {"/api/v1/auth/logout", "/api/v1/auth/logout-all"} or (
        case.path == "/api/v1/sessions/{session_id}" and case.method == "DELETE"
    ):
        headers = dict(case.headers or {})  # never log out the fuzzing session itself
    else:
        headers = {**auth, **(case.headers or {})}
    response = case.call(base_url=base_url, headers=headers, timeout=30)
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    content_type = response.headers.get("content-type") or [""]
    if isinstance(content_type, list):  # schemathesis keeps every header as a list
        content_type = content_type[0]
    if response.status_code >= 400 and content_type.startswith("application/json"):
        body = response.json()
        assert set(body) == {"error"} and {"code", "message", "request_id"} <= set(body["error"]), body
    # Not every rule is expressible in the schema (common passwords, a password containing
    # the username), so a schema-valid body may still be refused with a 400. A body over
    # PARLEY_MAX_REQUEST_BODY_BYTES is refused before it is read (413 PAYLOAD_TOO_LARGE):
    # a right answer to an over-long string too (escaped characters make a string of
    # max_length + 1 characters several megabytes of JSON), which the schema cannot say.
    if response.status_code == 413:
        assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    else:
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
    for _ in poisoned(case):
        answer = case.call(base_url=base_url, headers=headers, timeout=30)
        assert 400 <= answer.status_code < 500, (case.as_curl_command(), answer.text[:500])
        assert set(answer.json()) == {"error"}, answer.text[:500]


POISONS = ("\u0000", "\ud800")


def poisoned(case: Any) -> Iterator[None]:
    """Poison one string of ``case`` at a time (the first of the body, with each poison;
    the first of the query, with NUL), yielding while it is poisoned; restored after."""
    targets: list[tuple[dict[str, Any], tuple[str, ...]]] = []
    if isinstance(case.body, dict) and case.media_type == "application/json":
        targets.append((case.body, POISONS))
    if isinstance(case.query, dict):
        targets.append((case.query, POISONS[:1]))  # a URL cannot carry a surrogate
    for container, poisons in targets:
        key = next((k for k, v in container.items() if isinstance(v, str)), None)
        if key is None:
            continue
        original = container[key]
        for poison in poisons:
            container[key] = original[:1] + poison + original[1:]
            yield
        container[key] = original
