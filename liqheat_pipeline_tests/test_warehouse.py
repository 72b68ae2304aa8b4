from datetime import datetime

import pandas as pd

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
            time_column="ts",
            start=datetime(2025, 12, 1),
            end=datetime(2025, 12, 4),
        )
        warehouse.replace_rows(
            conn,
            "open_interest",
            _oi_rows("ETHUSDT", ["2025-12-02 12:00"]),
            symbol="ETHUSDT",
            time_column="ts",
            start=day,
            end=next_day,
        )
        # (D, D+1]: the 00:00 of D belongs to D-1, the 00:00 of D+1 to D.
        written = warehouse.replace_rows(
            conn,
            "open_interest",
            _oi_rows("BTCUSDT", ["2025-12-02 06:00"]),
            symbol="BTCUSDT",
            time_column="ts",
            start=day,
            end=next_day,
            include_end=True,
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
