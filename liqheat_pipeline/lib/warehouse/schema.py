"""The one table registry of the SQL contract: per table its columns, key, owning time column and
partition ownership, plus the contract view(s) and ``ensure_schema``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb

from liqheat_pipeline.lib.engine.closures import RENORMALISE_BELOW


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB's, lower case
    nullable: bool


@dataclass(frozen=True)
class Table:
    """One table: DDL columns, contract key, and which daily partition owns each row.

    Partition D of a symbol owns the rows whose ``time_column`` lies in [D 00:00, D+1 00:00),
    or in (D 00:00, D+1 00:00] when ``owns_end`` is set. A table without a time column is not
    partitioned (it is replaced whole).
    """

    columns: str
    key: tuple[str, ...]
    time_column: str | None
    owns_end: bool = False
    # Columns added after the table's first release: files created earlier gain them (NULL for
    # the old rows, which a recompute under the new model fills).
    added_columns: tuple[str, ...] = ()

    @property
    def column_definitions(self) -> tuple[Column, ...]:
        """The DDL's columns in order (the DDL has no types with commas inside)."""
        columns = []
        for definition in self.columns.split(","):
            name, column_type, *constraints = definition.split()
            columns.append(Column(name, column_type.lower(), "NOT" not in constraints))
        return tuple(columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.column_definitions)

    @property
    def key_within_symbol(self) -> tuple[str, ...]:
        """The key columns after ``symbol`` (what is unique within one symbol's rows)."""
        return tuple(column for column in self.key if column != "symbol")

    def owned(self, start: str = "?", end: str = "?") -> str:
        """SQL condition selecting the rows owned by the partition window [start, end) (or
        (start, end] with ``owns_end``); ``start``/``end`` are SQL placeholders or expressions."""
        if self.time_column is None:
            raise ValueError("the table is not partitioned: it has no time column")
        column = self.time_column
        if self.owns_end:
            return f"{column} > {start} AND {column} <= {end}"
        return f"{column} >= {start} AND {column} < {end}"

    def owning_day(self) -> str:
        """SQL expression of the day whose partition owns a row (see ``owned``)."""
        if self.time_column is None:
            raise ValueError("the table is not partitioned: it has no time column")
        if self.owns_end:
            return f"CAST({self.time_column} - INTERVAL 1 MICROSECOND AS DATE)"
        return f"CAST({self.time_column} AS DATE)"


# Tables carry no PRIMARY KEY: DuckDB's ART indexes make bulk delete-then-insert of large
# partitions slow and memory-hungry. Key uniqueness is verified by asset checks instead.
TABLES: dict[str, Table] = {
    "candles": Table(
        """
        symbol VARCHAR NOT NULL, open_time TIMESTAMP NOT NULL,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
        volume DOUBLE, quote_volume DOUBLE, trades BIGINT,
        taker_buy_volume DOUBLE, taker_buy_quote_volume DOUBLE""",
        key=("symbol", "open_time"),
        time_column="open_time",
    ),
    "mark_price_candles": Table(
        """
        symbol VARCHAR NOT NULL, open_time TIMESTAMP NOT NULL,
        open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE""",
        key=("symbol", "open_time"),
        time_column="open_time",
    ),
    # Partition D owns (D, D+1]: what the archive's metrics file D holds in both label
    # conventions.
    "open_interest": Table(
        """
        symbol VARCHAR NOT NULL, ts TIMESTAMP NOT NULL,
        open_interest DOUBLE, open_interest_value DOUBLE""",
        key=("symbol", "ts"),
        time_column="ts",
        owns_end=True,
    ),
    "level_openings": Table(
        """
        symbol VARCHAR NOT NULL, level_id BIGINT NOT NULL, created_at TIMESTAMP NOT NULL,
        side VARCHAR NOT NULL, leverage INTEGER NOT NULL, entry_price DOUBLE NOT NULL,
        liq_price DOUBLE NOT NULL, notional_usd DOUBLE NOT NULL,
        tier_leverage INTEGER, mmr DOUBLE, maint_amount DOUBLE, price_bucket DOUBLE""",
        key=("symbol", "level_id"),
        time_column="created_at",
    ),
    "level_consumptions": Table(
        """
        symbol VARCHAR NOT NULL, level_id BIGINT NOT NULL, consumed_at TIMESTAMP NOT NULL,
        consumed_usd DOUBLE NOT NULL, side VARCHAR""",
        key=("symbol", "level_id"),
        time_column="consumed_at",
    ),
    "candle_ledger": Table(
        """
        symbol VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, side VARCHAR NOT NULL,
        opened_usd DOUBLE NOT NULL, consumed_usd DOUBLE NOT NULL,
        closed_usd DOUBLE NOT NULL, active_usd DOUBLE NOT NULL,
        open_interest_usd DOUBLE, coverage DOUBLE, closure_scale DOUBLE""",
        key=("symbol", "ts", "side"),
        time_column="ts",
        added_columns=("open_interest_usd DOUBLE", "coverage DOUBLE", "closure_scale DOUBLE"),
    ),
    # The heatmap snapshots as stored: per cell (bucket, side[, leverage]) runs of candles
    # first_ts..last_ts of one day over which the cell's weight sum is constant; the views
    # heatmap_snapshots[_by_leverage] expand them with candle_ledger.closure_scale
    # (docs/model.md §4).
    "snapshot_segments": Table(
        """
        symbol VARCHAR NOT NULL, first_ts TIMESTAMP NOT NULL, last_ts TIMESTAMP NOT NULL,
        price_bucket DOUBLE NOT NULL, side VARCHAR NOT NULL, weight DOUBLE NOT NULL,
        consumed_usd DOUBLE NOT NULL""",
        key=("symbol", "first_ts", "price_bucket", "side"),
        time_column="first_ts",
    ),
    "snapshot_segments_by_leverage": Table(
        """
        symbol VARCHAR NOT NULL, first_ts TIMESTAMP NOT NULL, last_ts TIMESTAMP NOT NULL,
        price_bucket DOUBLE NOT NULL, side VARCHAR NOT NULL, leverage INTEGER NOT NULL,
        weight DOUBLE NOT NULL, consumed_usd DOUBLE NOT NULL""",
        key=("symbol", "first_ts", "price_bucket", "side", "leverage"),
        time_column="first_ts",
    ),
    # Observed liquidations (not modelled): one row per bucket of the source; a bucket the
    # source lacks is absent, never 0.
    "realized_liquidations": Table(
        """
        symbol VARCHAR NOT NULL, bucket_start TIMESTAMP NOT NULL, bucket_minutes INTEGER NOT NULL,
        long_usd DOUBLE NOT NULL, short_usd DOUBLE NOT NULL, source VARCHAR NOT NULL,
        scope VARCHAR NOT NULL""",
        key=("symbol", "bucket_start"),
        time_column="bucket_start",
    ),
    # The model's skill against realized_liquidations over a window (docs/validation.md).
    # Partition D owns the window ending at D+1 00:00.
    "model_skill": Table(
        """
        symbol VARCHAR NOT NULL, window_start TIMESTAMP NOT NULL, window_end TIMESTAMP NOT NULL,
        bucket_minutes INTEGER NOT NULL, side VARCHAR NOT NULL, predictor VARCHAR NOT NULL,
        metric VARCHAR NOT NULL, value DOUBLE, n_buckets INTEGER NOT NULL, config_hash VARCHAR,
        computed_at TIMESTAMP NOT NULL""",
        key=(
            "symbol",
            "window_start",
            "window_end",
            "bucket_minutes",
            "side",
            "predictor",
            "metric",
        ),
        time_column="window_end",
        owns_end=True,
    ),
    # Levels the closures closed out whole (their remaining share fell below the dust share, or
    # a closure took all open interest): with level_consumptions, what ends a level.
    "level_closeouts": Table(
        """
        symbol VARCHAR NOT NULL, level_id BIGINT NOT NULL, closed_at TIMESTAMP NOT NULL""",
        key=("symbol", "level_id"),
        time_column="closed_at",
    ),
    # Tables the model adds beside the SQL contract: `model_runs` one row per symbol and day with
    # the configuration that produced it and its end state's metadata (the state's levels are
    # the view model_state); `margin_brackets` the shipped bracket tables, so the
    # liquidation-price check can recompute prices in SQL.
    "model_runs": Table(
        """
        symbol VARCHAR NOT NULL, day DATE NOT NULL, config_hash VARCHAR NOT NULL,
        assumptions JSON NOT NULL, bucket_size DOUBLE, last_candle_time TIMESTAMP,
        stats JSON NOT NULL, state_metadata JSON NOT NULL, computed_at TIMESTAMP NOT NULL""",
        key=("symbol", "day"),
        time_column="day",
    ),
    "margin_brackets": Table(
        """
        symbol VARCHAR NOT NULL, effective_from DATE NOT NULL, floor DOUBLE NOT NULL,
        cap DOUBLE NOT NULL, max_leverage INTEGER NOT NULL, mmr DOUBLE NOT NULL,
        maint_amount DOUBLE NOT NULL""",
        key=("symbol", "effective_from", "floor"),
        time_column=None,
    ),
}

# The column definitions alone, per table (what CREATE TABLE takes).
TABLE_DDL: dict[str, str] = {name: table.columns for name, table in TABLES.items()}


def _snapshot_view(segments: str, tier: str = "") -> str:
    """One row per candle of each segment: active = weight × the candle's closure scale (the
    engine's own product, bit for bit), consumed booked in the segment's first candle.

    Two branches, so that the planner never expands a segment it does not need: a segment's
    first candle joins the ledger on equal keys (and is all a ``consumed_usd > 0`` filter
    reads: the other branch's consumed is the constant 0), its later candles join the ledger
    rows of the same day within the segment (segments never cross a day)."""
    columns = (
        f"s.symbol, l.ts, s.price_bucket, s.side, {tier}s.weight * l.closure_scale AS active_usd"
    )
    return f"""
        SELECT {columns}, s.consumed_usd
        FROM {segments} s
        JOIN candle_ledger l ON l.symbol = s.symbol AND l.side = s.side AND l.ts = s.first_ts
        UNION ALL
        SELECT {columns}, 0.0 AS consumed_usd
        FROM {segments} s
        JOIN candle_ledger l ON l.symbol = s.symbol AND l.side = s.side
            AND CAST(l.ts AS DATE) = CAST(s.first_ts AS DATE)
            AND l.ts > s.first_ts AND l.ts <= s.last_ts"""


# The levels active at the end of each stored day: opened by then and neither consumed nor closed
# out by then, with remaining notional = opening / S before its creation candle × S at the end
# of every engine run since (lib/engine/replay.py). Runs are UTC days, cut after a candle whose
# S fell below RENORMALISE_BELOW. The products are summed as logarithms here, so remaining_usd
# is the engine's to about 1e-13 relative; the engine itself restarts from the exact replay of
# these levels.
_MODEL_STATE = f"""
    WITH scales AS (
        SELECT symbol, ts, closure_scale AS scale,
               CAST(ts AS DATE) AS day,
               lag(closure_scale) OVER by_time AS scale_before,
               CAST(lag(ts) OVER by_time AS DATE) AS previous_day,
               CAST(lead(ts) OVER by_time AS DATE) AS next_day
        FROM candle_ledger WHERE side = 'long'
        WINDOW by_time AS (PARTITION BY symbol ORDER BY ts)
    ),
    runs AS (
        SELECT symbol, ts, day,
               -- ln S where a run ends, and ln of S before the candle within its run
               CASE WHEN next_day IS DISTINCT FROM day OR scale < {RENORMALISE_BELOW}
                    THEN ln(scale) ELSE 0 END AS end_log,
               CASE WHEN previous_day IS DISTINCT FROM day OR scale_before < {RENORMALISE_BELOW}
                    THEN 0 ELSE ln(scale_before) END AS before_log
        FROM scales
    ),
    logs AS (
        SELECT symbol, ts, day,
               sum(end_log) OVER (PARTITION BY symbol ORDER BY ts ROWS UNBOUNDED PRECEDING)
                   AS log_through,
               end_log, before_log
        FROM runs
    ),
    day_ends AS (
        SELECT symbol, day, arg_max(log_through, ts) AS log_through FROM logs GROUP BY ALL
    ),
    -- each level with its end, if any (equi-joins: a correlated NOT EXISTS per day would be
    -- planned as a join of every day with every level)
    levels AS (
        SELECT o.symbol, o.level_id, o.created_at, o.side, o.leverage, o.entry_price,
               o.liq_price, o.price_bucket, o.notional_usd,
               coalesce(k.consumed_at, x.closed_at) AS ended_at
        FROM level_openings o
        LEFT JOIN level_consumptions k USING (symbol, level_id)
        LEFT JOIN level_closeouts x USING (symbol, level_id)
    )
    SELECT r.symbol, r.day, l.level_id, l.created_at, l.side, l.leverage, l.entry_price,
           l.liq_price, l.price_bucket, l.notional_usd,
           -- a level's own run end is still ahead of it: S from its run's start to the end of D
           l.notional_usd
               * exp(e.log_through - c.log_through + c.end_log - c.before_log) AS remaining_usd
    FROM model_runs r
    JOIN day_ends e ON e.symbol = r.symbol AND e.day = r.day
    JOIN levels l ON l.symbol = r.symbol AND l.created_at < r.day + INTERVAL 1 DAY
        AND (l.ended_at IS NULL OR l.ended_at >= r.day + INTERVAL 1 DAY)
    JOIN logs c ON c.symbol = l.symbol AND c.ts = l.created_at"""

# Each snapshot view and the segment table it expands (readers of long windows use the table).
SNAPSHOT_SEGMENTS = {
    "heatmap_snapshots": "snapshot_segments",
    "heatmap_snapshots_by_leverage": "snapshot_segments_by_leverage",
}
VIEW_DDL: dict[str, str] = {
    "liquidation_levels": """
        SELECT o.*, c.consumed_at, c.consumed_usd
        FROM level_openings o
        LEFT JOIN level_consumptions c USING (symbol, level_id)""",
    "heatmap_snapshots": _snapshot_view(SNAPSHOT_SEGMENTS["heatmap_snapshots"]),
    "heatmap_snapshots_by_leverage": _snapshot_view(
        SNAPSHOT_SEGMENTS["heatmap_snapshots_by_leverage"], "s.leverage, "
    ),
    "model_state": _MODEL_STATE,
}
# Layouts this code no longer reads: relations that were tables before they became views. Such a
# file must be migrated first (ensure_schema says how).
_FORMER_TABLES = {
    "heatmap_snapshots": "the dense snapshot layout, now a view over snapshot_segments",
    "heatmap_snapshots_by_leverage": (
        "the dense snapshot layout, now a view over snapshot_segments_by_leverage"
    ),
    "model_state": (
        "each day's stored end-of-day levels, now a view derived from level_openings, "
        "level_consumptions, level_closeouts and candle_ledger"
    ),
}


_CURRENT_SCHEMA = "database_name = current_database() AND schema_name = current_schema()"


class SchemaMigrationError(RuntimeError):
    """The DuckDB file has an older layout that must be migrated first."""


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create every contract table that does not exist yet, and every view that does not exist
    or was created from another definition (an older version of this code)."""
    _refuse_former_tables(conn)
    for name, table in TABLES.items():
        conn.execute(f"CREATE TABLE IF NOT EXISTS {name} ({table.columns})")
        for column in table.added_columns:
            conn.execute(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {column}")
    for name in _stale_views(conn):
        conn.execute(f"CREATE OR REPLACE VIEW {name} AS {VIEW_DDL[name]}")
        conn.execute(f"COMMENT ON VIEW {name} IS '{view_stamp(VIEW_DDL[name])}'")


def schema_is_current(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``ensure_schema`` would change nothing: every table with all its columns, every
    view with its current definition, no table of a former layout. Read-only connections can ask."""
    columns = set(
        conn.execute(
            f"SELECT table_name, column_name FROM duckdb_columns() WHERE {_CURRENT_SCHEMA}"
        ).fetchall()
    )
    if any(
        (name, column) not in columns
        for name, table in TABLES.items()
        for column in table.column_names
    ):
        return False
    return not _former_tables(conn) and not _stale_views(conn)


def _stale_views(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The contract views that are missing or carry another definition's stamp.

    A view keeps the query it was created with: without the stamp, a file written by an older
    version would go on answering with the old definition."""
    stamps = dict(
        conn.execute(
            f"SELECT view_name, comment FROM duckdb_views() WHERE {_CURRENT_SCHEMA}"
        ).fetchall()
    )
    return [name for name, query in VIEW_DDL.items() if stamps.get(name) != view_stamp(query)]


def view_stamp(query: str) -> str:
    """The comment a contract view carries: which definition it was created from."""
    return f"liqheat view, definition sha256 {hashlib.sha256(query.encode()).hexdigest()[:16]}"


def _refuse_former_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Raise SchemaMigrationError naming every table of a former layout the file still has."""
    found = {name: _FORMER_TABLES[name] for name in _former_tables(conn)}
    if found:
        path = conn.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()[0]
        names = sorted(found)
        described = "; ".join(f"{name} ({found[name]})" for name in names)
        raise SchemaMigrationError(
            f"{path} has tables of a former layout (README, 'Upgrading'): {described}. Drop them "
            f"(`DROP TABLE {'; DROP TABLE '.join(names)};`) and re-materialize the model from "
            "the first day, or start from a new file."
        )


def _former_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables of a former layout (``_FORMER_TABLES``) the file still has."""
    former = list(_FORMER_TABLES)
    rows = conn.execute(
        f"SELECT table_name FROM duckdb_tables() WHERE {_CURRENT_SCHEMA} "
        f"AND table_name IN ({', '.join('?' for _ in former)})",
        former,
    ).fetchall()
    return [row[0] for row in rows]
