"""Running SQL with DuckDB named parameters (``$symbol``, ``$start`` ...), binding only the ones a
query mentions: DuckDB rejects unused ones, and callers share one parameter set across queries."""

from __future__ import annotations

import re
from collections.abc import Mapping

import duckdb
import pandas as pd

_PARAMETER = re.compile(r"\$([a-z_]+)")


def bind(sql: str, parameters: Mapping[str, object]) -> dict[str, object]:
    """The named parameters ``sql`` mentions, taken from ``parameters``; one the query needs but
    ``parameters`` lacks raises KeyError naming it."""
    wanted = sorted(set(_PARAMETER.findall(sql)))
    missing = [name for name in wanted if name not in parameters]
    if missing:
        raise KeyError(f"query parameters missing: {', '.join(missing)}")
    return {name: parameters[name] for name in wanted}


def execute(
    conn: duckdb.DuckDBPyConnection, sql: str, parameters: Mapping[str, object]
) -> pd.DataFrame:
    """Run ``sql`` with the named parameters it mentions (see ``bind``)."""
    return conn.execute(sql, bind(sql, parameters)).fetchdf()
