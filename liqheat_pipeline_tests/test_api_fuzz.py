"""Schemathesis fuzzing of every endpoint against the app's own OpenAPI schema (real server).

Whatever the parameters, a response is never a server error, always has a documented status
code and content type, and its body matches the declared schema. Schemathesis' "positive data
acceptance" check is left out: some rules span parameters (end_time after start_time, a bin
that is a multiple of the stored bucket, a modelled leverage tier, a window small enough) and
OpenAPI cannot express them, so schema-valid requests may rightly get a 400 or 422. The
hook's times carry an explicit offset: OpenAPI's date-time requires one, while the API also
accepts naive times as UTC (tested in test_api.py), which schemathesis would report as invalid
data accepted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from liqheat_pipeline.api.app import create_app
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL
from liqheat_pipeline_tests.helpers.api_server import running_server
from liqheat_pipeline_tests.helpers.demo_pipeline import demo_database

SYMBOL = DEMO_SYMBOL

# The schema does not depend on the database, so it is taken from the app object at import
# (schemathesis' fixture-based loading is incompatible with pytest 9); the requests go to a
# real server over real pipeline output.
schema = schemathesis.openapi.from_dict(create_app(Path("unused.duckdb")).openapi())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with running_server(demo_database(tmp_path_factory)) as base_url, requests.Session() as session:
        session.trust_env = False  # loopback: never through a proxy
        yield base_url, session


@schemathesis.hook
def flatmap_query(context, query):
    """Most cases ask for the modelled symbol, many within its history, so valid requests
    reach the data too."""
    if not query or "symbol" not in query:
        return st.just(query)
    modelled = {**query, "symbol": SYMBOL}
    variants = [query, modelled]
    if "start_time" in query:
        variants.append({**modelled, "start_time": "2025-12-01T03:00:00Z"})
        variants.append(
            {**modelled, "start_time": "2025-12-01T03:00:00Z", "end_time": "2025-12-01T09:10:00Z"}
        )
    if "start" in query:  # the observed liquidations' window
        variants.append(
            {**modelled, "start": "2025-12-02T00:00:00Z", "end": "2025-12-03T00:00:00Z"}
        )
    return st.sampled_from(variants)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_breaks_the_api(case, server):
    base_url, session = server
    case.call_and_validate(
        base_url=base_url, session=session, excluded_checks=[positive_data_acceptance]
    )
