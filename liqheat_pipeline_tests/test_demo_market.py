"""The seeded synthetic DEMOUSDT market: determinism, realism properties, archive round trip;
the numbered synthetic symbols (DEMO2USDT, …) for runs of several symbols."""

from __future__ import annotations

import gzip
import time
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqheat_pipeline.lib.archive.layout import daily_relative_path
from liqheat_pipeline.lib.archive.readers import read_klines, read_metrics
from liqheat_pipeline.lib.demo.market import (
    DEFAULT_SEED,
    DEMO_SYMBOL,
    _ar1,
    generate_demo_market,
    synthetic_symbols,
    write_demo_archive,
)
from liqheat_pipeline.lib.engine.brackets import GENERIC_SYMBOL, tables_for
from liqheat_pipeline.lib.heatmap.labels import SYNTHETIC_LABEL, chart_title, is_synthetic
from liqheat_pipeline.lib.warehouse import ensure_schema

START = date(2025, 12, 1)


@pytest.fixture(scope="module")
def market() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_demo_market(START, 60)


def _contract_columns(table: str) -> tuple[str, ...]:
    """The SQL contract's columns of ``table`` without ``symbol``, in table order."""
    with duckdb.connect() as conn:
        ensure_schema(conn)
        return tuple(row[0] for row in conn.execute(f"DESCRIBE {table}").fetchall()[1:])


def _log_returns(candles: pd.DataFrame) -> np.ndarray:
    return np.log(candles["close"].to_numpy() / candles["open"].to_numpy())


def _autocorrelation(values: np.ndarray, lag: int) -> float:
    centred = values - values.mean()
    return float((centred[:-lag] * centred[lag:]).mean() / centred.var())


def test_same_seed_gives_identical_frames_and_another_seed_differs():
    candles, open_interest = generate_demo_market(START, 5, seed=7)
    again_candles, again_open_interest = generate_demo_market(START, 5, seed=7)
    other_candles, other_open_interest = generate_demo_market(START, 5, seed=8)

    pd.testing.assert_frame_equal(candles, again_candles, check_exact=True)
    pd.testing.assert_frame_equal(open_interest, again_open_interest, check_exact=True)
    assert (candles["close"] != other_candles["close"]).mean() > 0.9
    assert (open_interest["open_interest"] != other_open_interest["open_interest"]).mean() > 0.9


def test_a_shorter_range_is_the_prefix_of_a_longer_one():
    short_candles, short_open_interest = generate_demo_market(START, 3)
    long_candles, long_open_interest = generate_demo_market(START, 20)

    pd.testing.assert_frame_equal(
        short_candles, long_candles.iloc[: len(short_candles)], check_exact=True
    )
    pd.testing.assert_frame_equal(
        short_open_interest, long_open_interest.iloc[: len(short_open_interest)], check_exact=True
    )


def test_output_does_not_depend_on_the_host_time_zone(monkeypatch, tmp_path):
    utc_candles, utc_open_interest = generate_demo_market(START, 2)
    utc_files = write_demo_archive(tmp_path / "utc", START, 2)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert time.localtime(0).tm_hour == 19  # the zone really is in effect
        ny_candles, ny_open_interest = generate_demo_market(START, 2)
        ny_files = write_demo_archive(tmp_path / "ny", START, 2)
    finally:
        monkeypatch.undo()
        time.tzset()

    pd.testing.assert_frame_equal(utc_candles, ny_candles, check_exact=True)
    pd.testing.assert_frame_equal(utc_open_interest, ny_open_interest, check_exact=True)
    assert [path.relative_to(tmp_path / "utc") for path in utc_files] == [
        path.relative_to(tmp_path / "ny") for path in ny_files
    ]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(utc_files, ny_files, strict=True))


def test_columns_and_a_continuous_five_minute_grid(market):
    candles, open_interest = market

    assert tuple(candles.columns) == _contract_columns("candles")
    assert tuple(open_interest.columns) == _contract_columns("open_interest")
    assert len(candles) == 60 * 288
    assert candles["open_time"].iloc[0] == pd.Timestamp("2025-12-01 00:00")
    assert (candles["open_time"].diff().iloc[1:] == pd.Timedelta(minutes=5)).all()
    # Open interest at every candle boundary, both ends of every candle included.
    assert len(open_interest) == len(candles) + 1
    assert open_interest["ts"].iloc[0] == pd.Timestamp("2025-12-01 00:00")
    assert open_interest["ts"].iloc[-1] == pd.Timestamp("2026-01-30 00:00")
    assert (open_interest["ts"].diff().iloc[1:] == pd.Timedelta(minutes=5)).all()
    assert candles.notna().all().all() and open_interest.notna().all().all()


def test_one_minute_candles_cover_the_same_days():
    candles, open_interest = generate_demo_market(START, 2, interval_minutes=1)

    assert len(candles) == 2 * 1440
    assert (candles["open_time"].diff().iloc[1:] == pd.Timedelta(minutes=1)).all()
    assert open_interest["ts"].iloc[-1] == pd.Timestamp("2025-12-03 00:00")


def test_ohlc_is_consistent_with_wicks_and_continuous_opens(market):
    candles, _ = market
    body_top = candles[["open", "close"]].max(axis=1)
    body_bottom = candles[["open", "close"]].min(axis=1)

    assert (candles["high"] >= body_top).all()
    assert (candles["low"] <= body_bottom).all()
    assert (candles["low"] > 0).all()
    assert (candles["open"].iloc[1:].to_numpy() == candles["close"].iloc[:-1].to_numpy()).all()
    assert (candles["high"] > body_top).mean() > 0.8
    assert (candles["low"] < body_bottom).mean() > 0.8


def test_volume_columns_are_consistent(market):
    candles, _ = market
    vwap = candles["quote_volume"] / candles["volume"]
    taker_vwap = candles["taker_buy_quote_volume"] / candles["taker_buy_volume"]
    up = candles["close"] > candles["open"]
    down = candles["close"] < candles["open"]
    buy_share = candles["taker_buy_volume"] / candles["volume"]

    assert (candles["volume"] > 0).all()
    assert (candles["trades"] >= 1).all() and candles["trades"].dtype.kind == "i"
    assert (vwap >= candles["low"] * (1 - 1e-9)).all()
    assert (vwap <= candles["high"] * (1 + 1e-9)).all()
    assert ((taker_vwap - vwap).abs() <= 1e-6 * vwap).all()
    assert (candles["taker_buy_volume"] >= 0).all()
    assert (candles["taker_buy_volume"] <= candles["volume"]).all()
    assert buy_share[up].mean() - buy_share[down].mean() > 0.1
    absolute_return = np.abs(_log_returns(candles))
    assert np.corrcoef(candles["volume"], absolute_return)[0, 1] > 0.3


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 1, 2])
def test_volatility_clusters_and_tails_are_fat(seed):
    candles, _ = generate_demo_market(START, 60, seed=seed)
    returns = _log_returns(candles)
    absolute = np.abs(returns)
    shuffled = np.random.default_rng(0).permutation(absolute)

    assert _autocorrelation(absolute, 1) > 0.15
    assert _autocorrelation(absolute, 12) > 0.15  # one hour
    assert _autocorrelation(absolute, 48) > 0.05  # four hours
    assert abs(_autocorrelation(shuffled, 1)) < 0.05  # the statistic itself is not biased
    assert pd.Series(returns).kurt() > 3  # excess kurtosis: jumps and volatility regimes


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 1, 2])
def test_open_interest_rises_when_calm_and_drops_on_large_moves(seed):
    candles, open_interest = generate_demo_market(START, 60, seed=seed)
    level = open_interest["open_interest"].to_numpy()
    change = np.diff(np.log(level))
    absolute_return = np.abs(_log_returns(candles))
    large = absolute_return > 0.01
    calm = absolute_return < np.median(absolute_return)

    assert (level > 0).all()
    assert (change > 0).mean() > 0.3 and (change < 0).mean() > 0.3
    assert level.max() / level.min() > 1.05
    assert large.sum() >= 3
    assert change[large].mean() < -0.003  # deleveraging on moves beyond 1 %
    assert change[calm].mean() > 0


def test_open_interest_is_valued_at_the_price_of_its_instant(market):
    candles, open_interest = market
    price = np.concatenate(([candles["open"].iloc[0]], candles["close"].to_numpy()))

    np.testing.assert_allclose(
        open_interest["open_interest_value"] / open_interest["open_interest"], price, rtol=1e-12
    )


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"days": 0}, "days"),
        ({"interval_minutes": 7}, "interval_minutes"),
        ({"start_price": -1.0}, "start_price"),
        ({"start_open_interest": float("nan")}, "start_open_interest"),
        ({"seed": -3}, "seed"),
    ],
)
def test_invalid_arguments_are_named(arguments, named):
    options = {"days": 1, **arguments}
    days = options.pop("days")
    with pytest.raises(ValueError, match=named):
        generate_demo_market(START, days, **options)


def test_archive_round_trips_through_the_readers(tmp_path):
    days = 3
    candles, open_interest = generate_demo_market(START, days)

    written = write_demo_archive(tmp_path, START, days)

    klines = [path for path in written if "/klines/" in path.as_posix()]
    metrics = [path for path in written if "/metrics/" in path.as_posix()]
    assert len(klines) == days and len(metrics) == days + 1
    assert len(written) == len(klines) + len(metrics) + 1

    read_candles = pd.concat([read_klines(path).frame for path in klines], ignore_index=True)
    pd.testing.assert_frame_equal(read_candles, candles, check_dtype=False, check_exact=True)

    reads = [read_metrics(path) for path in metrics]
    read_open_interest = pd.concat([read.frame for read in reads], ignore_index=True)
    pd.testing.assert_frame_equal(read_open_interest, open_interest, check_exact=True)
    # The file of the day before the start holds only the start's 00:00 snapshot.
    assert reads[0].day == START - timedelta(days=1)
    assert list(reads[0].frame["ts"]) == [pd.Timestamp(START)]
    assert all(not read.missing_slots for read in reads[1:])
    assert all(read.duplicates_dropped == 0 for read in reads)


def test_archive_files_sit_in_the_layout_with_the_real_archive_headers(tmp_path, real_binance_dir):
    written = write_demo_archive(tmp_path, START, 1)

    for dataset in ("klines", "metrics"):
        ours = tmp_path / daily_relative_path(dataset, DEMO_SYMBOL, START, suffix=".csv.gz")
        real = real_binance_dir / daily_relative_path(dataset, "BTCUSDT", START, suffix=".csv.gz")
        assert ours in written
        with gzip.open(ours, "rt") as mine, gzip.open(real, "rt") as theirs:
            assert mine.readline() == theirs.readline()


def test_metrics_taker_ratio_describes_the_candle_ending_at_the_snapshot(tmp_path):
    candles, _ = generate_demo_market(START, 1)
    write_demo_archive(tmp_path, START, 1)
    path = tmp_path / daily_relative_path("metrics", DEMO_SYMBOL, START, suffix=".csv.gz")

    ratio = pd.read_csv(path)["sum_taker_long_short_vol_ratio"].to_numpy()
    buy = candles["taker_buy_volume"].to_numpy()
    np.testing.assert_allclose(ratio, buy / (candles["volume"].to_numpy() - buy), atol=1e-4)


def test_archive_is_marked_synthetic_and_written_reproducibly(tmp_path):
    first = write_demo_archive(tmp_path / "a", START, 2, seed=11)
    second = write_demo_archive(tmp_path / "b", START, 2, seed=11)

    note = first[-1]
    assert note == tmp_path / "a" / "futures" / "um" / "daily" / "SYNTHETIC.md"
    text = note.read_text()
    assert DEMO_SYMBOL in text and "SYNTHETIC" in text and "not** Binance market data" in text
    assert "seed 11" in text
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))
    assert not [path for path in (tmp_path / "a").rglob("*") if path.name.startswith(".")]


def test_synthetic_symbols_are_numbered_with_seeds_of_their_own():
    assert synthetic_symbols(3) == [
        (DEMO_SYMBOL, DEFAULT_SEED),
        ("DEMO2USDT", DEFAULT_SEED + 1),
        ("DEMO3USDT", DEFAULT_SEED + 2),
    ]
    assert [symbol for symbol, _ in synthetic_symbols(12)][-1] == "DEMO12USDT"


@pytest.mark.parametrize("symbol", ["DEMOUSDT", "DEMO2USDT", "DEMO10USDT", "demo3usdt"])
def test_synthetic_symbols_are_labelled_and_use_the_generic_bracket_table(symbol):
    assert is_synthetic(symbol)
    assert chart_title(symbol, "heatmap").startswith(SYNTHETIC_LABEL)
    assert {table.symbol for table in tables_for(symbol.upper())} == {GENERIC_SYMBOL}


@pytest.mark.parametrize("symbol", ["BTCUSDT", "DEMO1USDT", "DEMO02USDT", "DEMOUSDTX", "XDEMOUSDT"])
def test_other_symbols_are_not_synthetic(symbol):
    assert not is_synthetic(symbol)
    assert not chart_title(symbol, "heatmap").startswith(SYNTHETIC_LABEL)


def test_a_numbered_symbol_is_written_beside_demousdt_with_its_own_note(tmp_path):
    demo = write_demo_archive(tmp_path, START, 1)
    (symbol, seed) = synthetic_symbols(2)[1]
    other = write_demo_archive(tmp_path, START, 1, seed=seed, symbol=symbol)

    klines = tmp_path / daily_relative_path("klines", symbol, START, suffix=".csv.gz")
    metrics = tmp_path / daily_relative_path("metrics", symbol, START, suffix=".csv.gz")
    assert klines in other and metrics in other
    candles, _ = generate_demo_market(START, 1, seed=seed)
    pd.testing.assert_frame_equal(
        read_klines(klines).frame, candles, check_dtype=False, check_exact=True
    )
    assert set(pd.read_csv(metrics)["symbol"]) == {symbol}
    assert not read_klines(klines).frame.equals(read_klines(demo[0]).frame)
    # Each symbol's note; DEMOUSDT's stays as it was.
    assert other[-1].name == f"SYNTHETIC-{symbol}.md"
    assert f"# {symbol} is SYNTHETIC" in other[-1].read_text()
    assert f"symbol='{symbol}'" in other[-1].read_text()
    assert demo[-1].name == "SYNTHETIC.md"
    assert f"# {DEMO_SYMBOL} is SYNTHETIC" in demo[-1].read_text()


def test_synthetic_data_is_never_written_under_another_symbol(tmp_path):
    with pytest.raises(ValueError, match="BTCUSDT"):
        write_demo_archive(tmp_path, START, 1, symbol="BTCUSDT")
    assert not list(tmp_path.iterdir())


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(1, 9000),
    phi=st.floats(0.3, 0.99999),
    initial=st.floats(-5, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_blockwise_ar1_filter_matches_the_recursion(length, phi, initial, seed):
    innovations = np.random.default_rng(seed).standard_normal(length)
    expected = np.empty(length)
    previous = initial
    for index, innovation in enumerate(innovations):
        previous = phi * previous + innovation
        expected[index] = previous

    scale = 1 + np.abs(expected).max()
    np.testing.assert_allclose(_ar1(innovations, phi, initial), expected, rtol=0, atol=1e-9 * scale)
