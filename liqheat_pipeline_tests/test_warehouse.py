from datetime import date, datetime

import pandas as pd
import pytest

from liqheat_pipeline.lib import warehouse


def _oi_rows(symbol: str, instants: list[str]) -> pd.DataFrame:
    # Deliberately not in table column order: the insert must match columns by name.
    return pd.DataFrame(
        {
            "open_interest_value": [1.0] * len(instants),
            "ts": pd.to_datetime(instants),
            "open_interest": [2.0] * len(instants),
            "symbol": symbol,
        }
    )


def test_replace_rows_owns_exactly_its_window_and_symbol(db_path):
    day, next_day = datetime(2025, 12, 2), datetime(2025, 12, 3)
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        seed = ["2025-12-02 00:00", "2025-12-02 12:00", "2025-12-03 00:00", "2025-12-03 00:05"]
        warehouse.replace_rows(
            conn,
            "open_interest",
            _oi_rows("BTCUSDT", seed),
            symbol="BTCUSDT",
            start=datetime(2025, 12, 1),
            end=datetime(2025, 12, 4),
        )
        warehouse.replace_rows(
            conn,
            "open_interest",
            _oi_rows("ETHUSDT", ["2025-12-02 12:00"]),
            symbol="ETHUSDT",
            start=day,
            end=next_day,
        )
        # (D, D+1]: the 00:00 of D belongs to D-1, the 00:00 of D+1 to D.
        written = warehouse.replace_rows(
            conn,
            "open_interest",
            _oi_rows("BTCUSDT", ["2025-12-02 06:00"]),
            symbol="BTCUSDT",
            start=day,
            end=next_day,
        )
        rows = conn.execute(
            "SELECT symbol, strftime(ts, '%Y-%m-%d %H:%M'), open_interest FROM open_interest "
            "ORDER BY symbol, ts"
        ).fetchall()
    assert written == 1
    assert rows == [
        ("BTCUSDT", "2025-12-02 00:00", 2.0),
        ("BTCUSDT", "2025-12-02 06:00", 2.0),
        ("BTCUSDT", "2025-12-03 00:05", 2.0),
        ("ETHUSDT", "2025-12-02 12:00", 2.0),
    ]


def test_schema_creates_the_contract_view(db_path):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        warehouse.ensure_schema(conn)  # idempotent
        columns = [row[0] for row in conn.execute("DESCRIBE liquidation_levels").fetchall()]
    assert {"level_id", "liq_price", "notional_usd", "consumed_at", "consumed_usd"} <= set(columns)


def test_every_registered_key_and_time_column_is_a_column_of_its_table(db_path):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        for name, table in warehouse.TABLES.items():
            columns = {row[0] for row in conn.execute(f"DESCRIBE {name}").fetchall()}
            assert set(table.key) <= columns, name
            assert table.key[0] == "symbol", name
            assert table.time_column is None or table.time_column in columns, name


def test_partitions_own_the_days_the_contract_says():
    tables = warehouse.TABLES
    assert {name for name, table in tables.items() if table.owns_end} == {
        "open_interest",
        "model_skill",
    }
    assert tables["open_interest"].owned() == "ts > ? AND ts <= ?"
    assert tables["candles"].owned("$start", "$end") == "open_time >= $start AND open_time < $end"
    assert tables["model_runs"].key_within_symbol == ("day",)
    assert tables["level_closeouts"].owned() == "closed_at >= ? AND closed_at < ?"
    with pytest.raises(ValueError, match="not partitioned"):
        tables["margin_brackets"].owned()


def _skill_row(window_end: str) -> dict[str, object]:
    return {
        "symbol": "BTCUSDT",
        "window_start": pd.Timestamp("2025-12-01"),
        "window_end": pd.Timestamp(window_end),
        "bucket_minutes": 60,
        "side": "long",
        "predictor": "model",
        "metric": "spearman",
        "value": 0.5,
        "n_buckets": 24,
        "config_hash": "abc",
        "computed_at": pd.Timestamp("2025-12-05"),
    }


def test_model_skill_partition_d_owns_the_window_ending_at_the_next_midnight(db_path):
    day, next_day = datetime(2025, 12, 2), datetime(2025, 12, 3)
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        seed = pd.DataFrame([_skill_row(end) for end in ("2025-12-02", "2025-12-03")])
        warehouse.replace_rows(
            conn, "model_skill", seed, symbol="BTCUSDT", start=datetime(2025, 12, 1), end=next_day
        )
        written = warehouse.replace_rows(
            conn, "model_skill", seed.iloc[1:].assign(value=0.9), symbol="BTCUSDT",
            start=day, end=next_day,
        )  # fmt: skip
        rows = conn.execute(
            "SELECT strftime(window_end, '%Y-%m-%d'), value FROM model_skill ORDER BY window_end"
        ).fetchall()
    assert written == 1
    assert rows == [("2025-12-02", 0.5), ("2025-12-03", 0.9)]


def test_replace_table_replaces_every_row(db_path):
    brackets = pd.DataFrame(
        {
            "symbol": ["*"],
            "effective_from": [date(2025, 1, 1)],
            "floor": [0.0],
            "cap": [1e12],
            "max_leverage": [125],
            "mmr": [0.004],
            "maint_amount": [0.0],
        }
    )
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        warehouse.replace_table(conn, "margin_brackets", brackets.assign(mmr=0.01))
        assert warehouse.replace_table(conn, "margin_brackets", brackets) == 1
        assert conn.execute("SELECT symbol, mmr FROM margin_brackets").fetchall() == [("*", 0.004)]


def test_execute_binds_only_the_parameters_a_query_mentions(db_path):
    with warehouse.connect(db_path) as conn:
        frame = warehouse.execute(conn, "SELECT $a + 1 AS b", {"a": 1, "unused": "x"})
        assert frame["b"].tolist() == [2]
        with pytest.raises(KeyError, match="query parameters missing: a"):
            warehouse.execute(conn, "SELECT $a AS b", {})


def _cached_table_bytes(conn) -> int:
    return conn.sql(
        "SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
    ).fetchall()[0][0]


@pytest.mark.parametrize("memory_limit_mb", [None, 16])
def test_memory_limit_bounds_the_block_cache_of_a_long_read(db_path, memory_limit_mb):
    # DuckDB keeps the blocks a connection reads cached up to its memory limit (80 % of RAM by
    # default): a range's checks read day after day and grew with the range until the limit.
    with warehouse.transaction(db_path) as conn:
        conn.execute(
            "CREATE TABLE wide AS SELECT i AS day, random() AS value FROM range(8000000) t(i)"
        )
    with warehouse.read(db_path, memory_limit_mb=memory_limit_mb) as conn:
        for first in range(0, 8_000_000, 1_000_000):  # one "day" after the other
            conn.execute(
                "SELECT sum(value) FROM wide WHERE day >= $first AND day < $first + 1000000",
                {"first": first},
            ).fetchall()
        cached = _cached_table_bytes(conn)
        limit = conn.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    if memory_limit_mb is None:
        assert cached > 2 * 16 * 2**20  # the table stays cached: twice the limit below
    else:
        assert limit == f"{memory_limit_mb}.0 MiB"
        assert cached <= memory_limit_mb * 2**20
