"""Liquidation price maths and the shipped margin-bracket tables."""

from __future__ import annotations

import itertools
import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from liqheat_pipeline.lib.engine import brackets
from liqheat_pipeline.lib.engine.brackets import (
    BracketDataError,
    bracket_for,
    bracket_table_frame,
    load_bracket_tables,
    shipped_tables,
    table_for,
)
from liqheat_pipeline.lib.engine.liquidation import liquidation_price


def faq_liquidation_price(entry, leverage, side, mmr, cum, notional):
    """Binance FAQ: LP = (WB + cum - Side*Q*EP) / (Q*MMR - Side*Q), isolated WB = N / L."""
    quantity = notional / entry
    sign = 1.0 if side == "long" else -1.0
    wallet = notional / leverage
    return (wallet + cum - sign * quantity * entry) / (quantity * mmr - sign * quantity)


def margin_equals_maintenance(entry, leverage, side, mmr, cum, notional, price):
    """Margin balance minus maintenance margin (N_at_price * MMR - cum) at ``price``."""
    quantity = notional / entry
    pnl = quantity * (price - entry) * (1 if side == "long" else -1)
    return notional / leverage + pnl - (quantity * price * mmr - cum)


def test_binance_worked_example_long_10x_at_67000():
    assert round(float(liquidation_price(67_000, 10, "long", 0.004, 0, 10_000)), 2) == 60_542.17


def test_short_analogue_of_the_worked_example():
    price = float(liquidation_price(67_000, 10, "short", 0.004, 0, 10_000))
    assert price == pytest.approx(67_000 * 1.1 / 1.004, rel=1e-15)
    assert round(price, 2) == 73_406.37


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize(
    ("leverage", "mmr", "cum", "notional"),
    [(20, 0.005, 50.0, 100_000.0), (50, 0.01, 1_300.0, 400_000.0), (5, 0.10, 1_266_300.0, 3e7)],
)
def test_nonzero_maintenance_amount_matches_the_faq_formula(side, leverage, mmr, cum, notional):
    price = float(liquidation_price(50_000.0, leverage, side, mmr, cum, notional))
    assert price == pytest.approx(
        faq_liquidation_price(50_000.0, leverage, side, mmr, cum, notional), rel=1e-12
    )
    # At the liquidation price the margin balance equals the maintenance margin.
    gap = margin_equals_maintenance(50_000.0, leverage, side, mmr, cum, notional, price)
    assert abs(gap) <= 1e-9 * notional


def test_maintenance_amount_moves_the_price_away_from_entry():
    long_plain, long_cum = liquidation_price(50_000, 20, "long", 0.005, [0.0, 50.0], 100_000)
    short_plain, short_cum = liquidation_price(50_000, 20, "short", 0.005, [0.0, 50.0], 100_000)
    assert long_cum < long_plain < 50_000 < short_plain < short_cum


def test_vectorised_over_sides_and_leverages():
    prices = liquidation_price(
        np.full(4, 100.0), [5, 10, 5, 10], ["long", "long", "short", "short"], 0.004, 0.0, 1e4
    )
    expected = [100 * (1 - 1 / 5) / 0.996, 100 * 0.9 / 0.996, 100 * 1.2 / 1.004, 100 * 1.1 / 1.004]
    np.testing.assert_allclose(prices, expected, rtol=1e-15)


def test_unknown_side_is_refused():
    with pytest.raises(ValueError, match="'sideways'"):
        liquidation_price(100.0, 10, "sideways", 0.004, 0.0, 1e4)


@pytest.mark.parametrize("table", shipped_tables(), ids=lambda table: table.version)
def test_every_shipped_table_is_self_consistent(table):
    rows = table.brackets
    assert rows[0].floor == 0 and rows[0].maint_amount == 0
    for previous, bracket in itertools.pairwise(rows):
        assert bracket.floor == previous.cap
        expected = previous.maint_amount + bracket.floor * (bracket.mmr - previous.mmr)
        assert bracket.maint_amount == pytest.approx(expected, rel=1e-12, abs=1e-9)
        assert bracket.mmr >= previous.mmr and bracket.max_leverage <= previous.max_leverage


def test_bracket_boundaries_follow_binance_floor_exclusive_cap_inclusive():
    day = date(2022, 1, 1)  # the 2021-03-18 BTCUSDT table
    assert bracket_for("BTCUSDT", day, 50_000).mmr == 0.004
    assert bracket_for("BTCUSDT", day, 50_000.01).mmr == 0.005
    assert bracket_for("BTCUSDT", day, 0).max_leverage == 125
    with pytest.raises(ValueError, match="exceeds the top bracket cap"):
        bracket_for("BTCUSDT", day, 6e8)


def test_tables_are_chosen_by_date():
    assert table_for("BTCUSDT", date(2021, 3, 17)).version == "BTCUSDT@2021-03-18"  # first table
    assert table_for("BTCUSDT", date(2021, 3, 18)).version == "BTCUSDT@2021-03-18"
    assert table_for("BTCUSDT", date(2024, 7, 1)).version == "BTCUSDT@2024-07-01"
    assert table_for("BTCUSDT", date(2025, 12, 1)).version == "BTCUSDT@2025-01-01"
    assert bracket_for("BTCUSDT", date(2022, 1, 1), 1e6).mmr == 0.01
    assert bracket_for("BTCUSDT", date(2024, 8, 1), 1e6).mmr == 0.0065


def test_other_symbols_use_the_generic_table():
    assert table_for("DEMOUSDT", date(2025, 12, 1)).symbol == brackets.GENERIC_SYMBOL
    assert table_for("ETHUSDT", date(2025, 12, 1)).symbol == "ETHUSDT"


def test_bracket_table_frame_lists_every_bracket():
    frame = bracket_table_frame()
    assert list(frame.columns) == [
        "symbol",
        "effective_from",
        "floor",
        "cap",
        "max_leverage",
        "mmr",
        "maint_amount",
    ]
    assert len(frame) == sum(len(table.brackets) for table in shipped_tables())
    assert set(frame["symbol"]) == {"BTCUSDT", "ETHUSDT", "*"}


def _data_with(tmp_path, mutate):
    shipped = Path(brackets.__file__).parent / "data" / "margin_brackets.json"
    document = json.loads(shipped.read_text(encoding="utf-8"))
    mutate(document)
    path = tmp_path / "brackets.json"
    path.write_text(json.dumps(document))
    return path


def test_inconsistent_maintenance_amount_is_rejected(tmp_path):
    def break_cum(document):
        document["tables"][0]["brackets"][2]["maint_amount"] = 1_000

    with pytest.raises(BracketDataError, match=r"table 0 .*bracket 3: maint_amount 1000.0"):
        load_bracket_tables(_data_with(tmp_path, break_cum))


def test_gap_between_brackets_is_rejected(tmp_path):
    def open_gap(document):
        document["tables"][1]["brackets"][1]["floor"] = 60_000

    with pytest.raises(BracketDataError, match=r"bracket 2: floor 60000\.0 does not continue"):
        load_bracket_tables(_data_with(tmp_path, open_gap))


def test_missing_generic_table_is_rejected(tmp_path):
    def drop_generic(document):
        document["tables"] = [t for t in document["tables"] if t["symbol"] != "*"]

    with pytest.raises(BracketDataError, match="no generic table"):
        load_bracket_tables(_data_with(tmp_path, drop_generic))
