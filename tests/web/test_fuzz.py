"""Fuzz the JSON API from its own OpenAPI schema (schemathesis): valid and invalid inputs to
every operation, and no response may be a 5xx.  Deterministic and bounded (well under 60 s)."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from rigplan.web import create_app  # noqa: E402

# Examples per operation; with ~22 operations the run takes about 30 s.
EXAMPLES_PER_OPERATION = 25

# "testserver" is the Host the ASGI test client sends; the Host guard is tested in test_app.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(allowed_hosts=["127.0.0.1", "testserver"]))
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    database="none",
)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES_PER_OPERATION)
def test_no_input_gives_a_server_error(case):
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} {case.query or ''} {case.body if case.body is not None else ''}"
        f" -> {response.status_code} {response.text[:500]}"
    )
    content_type = response.headers.get("content-type", [""])
    assert content_type[0].startswith("application/json"), content_type
