"""The one symbol rule."""

import pytest

from liqheat_pipeline.lib.symbols import is_symbol


@pytest.mark.parametrize("name", ["BTCUSDT", "1000PEPEUSDT", "AB"])
def test_binance_perpetual_names_are_symbols(name):
    assert is_symbol(name)


@pytest.mark.parametrize(
    "name", ["btcusdt", "BTC-USDT", "B", "A" * 21, "BTCUSDT\n", " BTCUSDT", "", None, 7]
)
def test_anything_else_is_not(name):
    assert not is_symbol(name)
