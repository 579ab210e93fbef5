"""Fuzz the JSON API from its own OpenAPI schema (schemathesis) with every check it has: no
5xx, responses and status codes as declared, schema-violating input refused, 405 with `Allow`,
and schema-valid input accepted.  Deterministic and bounded (~30 s).

One check is replaced rather than switched off.  Schemathesis's `positive_data_acceptance`
expects every schema-valid request to succeed, but some rules span several fields and no JSON
schema can state them ("context may not be smaller than prompt_tokens + output_tokens",
"llama.cpp has no fp8 KV cache").  Ours lets a schema-valid request be refused only with 422
and a rigplan error that names the rule (`InvalidValueError`, `UnsupportedError`, …) or 404 for
an unknown name; a `ValidationError` (the server's schema check disagreeing with the published
schema) or any other status still fails.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.config._checks import NegativeDataRejectionConfig  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from rigplan.web import create_app  # noqa: E402

# Examples per operation and mode; with ~22 operations a few hundred requests in all.
EXAMPLES_PER_OPERATION = 12
# Statuses a schema-valid request may get: success, an unknown name, a cross-field rule.
ACCEPTED_OR_RULE = {200, 404, 422}

# "testserver" is the Host the ASGI test client sends; the Host guard is tested in test_app.
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(allowed_hosts=["127.0.0.1", "testserver"]))
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES_PER_OPERATION,
    deterministic=True,
    database="none",
)


# A body over the server's byte limit (413) or a query string over it (414) is refused before
# any parsing: a rejection as good as 422 for schema-violating data (a 60,001-character
# config.json text, eight 200-character model names percent-encoded, are such requests).
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=[*NegativeDataRejectionConfig().expected_statuses, 413, 414]
)


@schemathesis.check
def valid_input_is_accepted_or_refused_by_a_named_rule(ctx, response, case) -> None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    status = response.status_code
    error = response.json().get("error") if status >= 400 else None
    assert status in ACCEPTED_OR_RULE, f"schema-valid request got {status}: {response.text[:300]}"
    assert error != "ValidationError", f"the server's schema disagrees with /openapi.json: {response.text[:300]}"


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES_PER_OPERATION)
def test_every_schemathesis_check_passes(case):
    response = case.call_and_validate(
        excluded_checks=[positive_data_acceptance],
        additional_checks=[valid_input_is_accepted_or_refused_by_a_named_rule],
    )
    assert response.status_code < 500
    assert response.headers.get("content-type", [""])[0].startswith("application/json")
