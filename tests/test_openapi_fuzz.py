"""Schemathesis over the app's own OpenAPI document, anonymous and as admin.

Every operation the spec documents is fuzzed in-process: no 5xx, every status and content
type documented, every body matching its schema. New endpoints join automatically.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 20


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")
fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@fuzz_settings
def test_anonymous(case):
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@fuzz_settings
def test_as_admin(case, as_admin):
    # One admin per operation (a fixture is not re-run per example); an example that logs
    # the token out leaves the rest of that operation's examples at a documented 401.
    case.call_and_validate(headers=as_admin, checks=CHECKS)
