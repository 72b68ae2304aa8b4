"""A deterministic, seeded **synthetic** market (DEMOUSDT) for the offline demo and benchmarks.

More synthetic symbols (``synthetic_symbols``: DEMOUSDT, DEMO2USDT, DEMO3USDT, …) each get their
own seed, for runs of several symbols; every one of them is synthetic (``is_synthetic_symbol``).

Nothing here is real market data. The generator only aims to look and behave like a Binance
USDⓈ-M perpetual's 5-minute candles and open interest, so that the pipeline and model have
something realistic to chew on without network access:

* log-returns with clustered volatility (a sum of log-volatility AR(1) components from one hour to
  two weeks, a diurnal cycle, and volatility that flares after jumps), a slowly wandering trend
  and occasional jumps;
* each candle opens at the previous close; wicks reach beyond open and close; volume follows
  volatility and the candle's own move; the volume-weighted price lies inside [low, high]; the
  taker-buy share leans with the candle's direction;
* open interest (base units) drifts up in calm markets, drops sharply on large moves
  (liquidation cascades and deleveraging) and mean-reverts; it is valued at the price of the
  instant (the previous candle's close).

Every random stream has its own child of one ``SeedSequence`` and each is drawn as one array
shaped ``(candles, k)``, so a shorter range is exactly the prefix of a longer one with the same
start and seed. All arithmetic is vectorised numpy; prices are rounded to a tick and quantities
to a lot, so the output is identical from run to run and does not depend on the host time zone.
"""

from __future__ import annotations

import gzip
import re
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from liqheat_pipeline.lib.archive.layout import KLINES, METRICS, UM_DAILY, daily_relative_path
from liqheat_pipeline.lib.atomic_file import write_bytes_atomically

DEMO_SYMBOL = "DEMOUSDT"
DEFAULT_SEED = 20251201
ARCHIVE_INTERVAL_MINUTES = 5
SYNTHETIC_NOTE = "SYNTHETIC.md"
# DEMOUSDT and the numbered synthetic symbols DEMO2USDT, DEMO3USDT, … (never DEMO1USDT, DEMO02USDT).
_SYNTHETIC_SYMBOL = re.compile(r"DEMO(?:[2-9]|[1-9]\d+)?USDT")

_MINUTES_PER_DAY = 24 * 60
_DAYS_PER_YEAR = 365
# One named random stream per ingredient; append new names at the end to keep old streams stable.
_STREAMS = (
    "initial",
    "volatility",
    "trend",
    "shocks",
    "jumps",
    "wicks",
    "volume",
    "vwap",
    "flow",
    "open_interest",
)

# Log-volatility components as (half-life in minutes, stationary standard deviation). Together
# they give |return| an autocorrelation that decays over hours and lingers for days, as in
# real BTCUSDT (about 0.33 at lag 1 and 0.2 at lag 1 h).
_VOLATILITY_COMPONENTS = ((60, 0.35), (_MINUTES_PER_DAY, 0.30), (14 * _MINUTES_PER_DAY, 0.30))
_DIURNAL_AMPLITUDE = 0.35  # volatility and volume peak around the US open
_DIURNAL_PEAK_HOUR = 15
_TREND_HALF_LIFE_MINUTES = 3 * _MINUTES_PER_DAY
_TREND_DAILY_STD = 0.004  # standard deviation of the trend's drift per day
_JUMPS_PER_DAY = 0.2
_JUMP_MIN = 0.006  # absolute log-return of the smallest jump
_JUMP_MEAN_EXCESS = 0.005  # jump sizes are _JUMP_MIN plus an exponential with this mean
_JUMP_DOWN_SHARE = 0.55
_JUMP_EXCITATION = 40.0  # log-volatility added per unit of jump log-return (1 % → +0.4)
_EXCITATION_HALF_LIFE_MINUTES = 240
_JUMP_OVERSHOOT = 0.3  # a jump's wick overshoots its close by this share of the jump
_WICK_SCALE = 0.42  # mean wick beyond the candle body, in units of the candle's volatility
_SPIKE_PROBABILITY = 0.01  # occasional long wicks (stop runs)
_SPIKE_SCALE = 2.0
_DAILY_TURNOVER = 1.5  # typical daily volume as a multiple of the starting open interest
_VOLUME_VOLATILITY_ELASTICITY = 0.8
_VOLUME_MOVE_SENSITIVITY = 0.2  # per unit of |return| / volatility, capped at _MOVE_CAP
_MOVE_CAP = 12.0
_MEAN_ABS_NORMAL = float(np.sqrt(2 / np.pi))  # E|z| for a standard normal z
_VOLUME_NOISE = 0.5
_TRADES_PER_MINUTE = 600  # at typical volume
_TRADES_NOISE = 0.2
_TAKER_TILT = 0.18  # taker-buy share = 0.5 + tilt × tanh(signed move in volatility units)
_TAKER_NOISE = 0.04
_OI_HALF_LIFE_MINUTES = 10 * _MINUTES_PER_DAY
_OI_CALM_INFLOW_PER_DAY = 0.012  # log open-interest growth per calm day
_OI_TREND_BOOST = 1.0  # inflow grows with the strength of the trend
# A steady outflow about equal to the average inflow keeps the long-run level near the start
# instead of climbing to a higher equilibrium in the first days.
_OI_OUTFLOW_PER_DAY = 0.012
_OI_CASCADE_THRESHOLD = 3.5  # moves beyond this many base volatilities trigger deleveraging
_OI_CASCADE_PER_SIGMA = 0.003  # log open interest lost per base volatility beyond the threshold
_OI_CASCADE_CAP = 0.3
_OI_NOISE_PER_5M = 0.0007
_QUANTITY_DECIMALS = 3
_QUOTE_DECIMALS = 5
_RATIO_DECIMALS = 4
# Inside one block of the AR(1) filter the growth factor phi^-k stays below e^_MAX_GROWTH_LOG.
_MAX_GROWTH_LOG = 200.0
_MAX_BLOCK = 4096


def synthetic_symbols(count: int) -> list[tuple[str, int]]:
    """The first ``count`` synthetic symbols with their seeds: (DEMOUSDT, DEFAULT_SEED), then
    (DEMO<n>USDT, DEFAULT_SEED + n - 1) for n = 2 … count."""
    return [
        (DEMO_SYMBOL if n == 1 else f"DEMO{n}USDT", DEFAULT_SEED + n - 1)
        for n in range(1, count + 1)
    ]


def is_synthetic_symbol(symbol: str) -> bool:
    """Whether ``symbol`` names one of the generated markets (DEMOUSDT, DEMO2USDT, …)."""
    return _SYNTHETIC_SYMBOL.fullmatch(symbol.upper()) is not None


def synthetic_note_name(symbol: str) -> str:
    """The note marking ``symbol``'s files as synthetic, in ``<root>/futures/um/daily/``."""
    return SYNTHETIC_NOTE if symbol == DEMO_SYMBOL else f"SYNTHETIC-{symbol}.md"


def generate_demo_market(
    start: date,
    days: int,
    *,
    seed: int = DEFAULT_SEED,
    interval_minutes: int = 5,
    start_price: float = 50_000.0,
    start_open_interest: float = 80_000.0,
    annual_volatility: float = 0.45,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Synthetic candles for ``days`` UTC days from ``start`` and the open interest at every
    candle boundary from ``start`` 00:00 to the end of the last day inclusive.

    Returns ``(candles, open_interest)`` with the SQL contract's column names (without
    ``symbol``): one candle per ``interval_minutes`` slot, ``days × 1440 / interval_minutes``
    rows, and one more open-interest row than candles. Times are naive UTC.
    """
    _validate_generator_arguments(
        days, seed, interval_minutes, start_price, start_open_interest, annual_volatility
    )
    steps_per_day = _MINUTES_PER_DAY // interval_minutes
    count = days * steps_per_day
    random = _random_streams(seed)
    initial = random["initial"].standard_normal(len(_VOLATILITY_COMPONENTS) + 1)
    base_sigma = annual_volatility / np.sqrt(_DAYS_PER_YEAR * steps_per_day)

    jump = _jumps(random["jumps"].random((count, 3)), steps_per_day)
    minute_of_day = (np.arange(count) * interval_minutes) % _MINUTES_PER_DAY
    diurnal = 1.0 + _DIURNAL_AMPLITUDE * np.cos(
        2 * np.pi * (minute_of_day / 60 - _DIURNAL_PEAK_HOUR) / 24
    )
    volatility_normal = random["volatility"].standard_normal((count, len(_VOLATILITY_COMPONENTS)))
    sigma = (
        base_sigma
        * diurnal
        * _volatility_multiplier(volatility_normal, initial, jump, interval_minutes)
    )
    trend_phi = _phi(_TREND_HALF_LIFE_MINUTES, interval_minutes)
    trend_std = _TREND_DAILY_STD / steps_per_day
    trend = _ar1(
        random["trend"].standard_normal(count) * trend_std * np.sqrt(1 - trend_phi**2),
        trend_phi,
        initial=trend_std * initial[-1],
    )
    log_return = trend + sigma * random["shocks"].standard_normal(count) + jump

    decimals = _price_decimals(start_price)
    close = np.round(start_price * np.exp(np.cumsum(log_return)), decimals)
    open_ = np.concatenate(([np.round(start_price, decimals)], close[:-1]))
    high, low = _wicks(random["wicks"].random((count, 5)), open_, close, sigma, jump, decimals)
    times = pd.date_range(
        pd.Timestamp(start), periods=count + 1, freq=pd.Timedelta(minutes=interval_minutes)
    )
    candles = pd.DataFrame(
        {"open_time": times[:-1], "open": open_, "high": high, "low": low, "close": close}
    )
    typical_volume = _DAILY_TURNOVER * start_open_interest / steps_per_day
    _add_volumes(
        candles, random, log_return / sigma, sigma / base_sigma, typical_volume, interval_minutes
    )

    log_open_interest = _open_interest_log_path(
        random["open_interest"].standard_normal(count),
        log_return,
        sigma,
        trend,
        trend_std,
        base_sigma,
        interval_minutes,
    )
    open_interest = np.round(
        start_open_interest * np.exp(np.concatenate(([0.0], log_open_interest))),
        _QUANTITY_DECIMALS,
    )
    # An instant's value uses the last traded price at that instant: the previous candle's close.
    price_at_instant = np.concatenate(([open_[0]], close))
    open_interest_frame = pd.DataFrame(
        {
            "ts": times,
            "open_interest": open_interest,
            "open_interest_value": np.round(open_interest * price_at_instant, _QUOTE_DECIMALS),
        }
    )
    return candles, open_interest_frame


def write_demo_archive(
    root: str | Path,
    start: date,
    days: int,
    *,
    seed: int = DEFAULT_SEED,
    symbol: str = DEMO_SYMBOL,
) -> list[Path]:
    """Write the synthetic market ``symbol`` (DEMOUSDT unless another ``is_synthetic_symbol``)
    for ``days`` days from ``start`` into ``root`` (archive layout).

    Klines: one gzip CSV per day with the archive header, epoch-millisecond times. Metrics: one
    gzip CSV per day in the pre-2026-06-25 convention (file D holds the snapshots in
    (D 00:00, D+1 00:00], labelled by the snapshot instant), plus file ``start − 1`` holding
    only the ``start`` 00:00 snapshot so the first candle has open interest at both ends.
    Finally a note in ``<root>/futures/um/daily/`` (``synthetic_note_name``: ``SYNTHETIC.md``
    for DEMOUSDT) marks the symbol as synthetic. Returns the written paths (klines, metrics,
    then the note).
    """
    if not is_synthetic_symbol(symbol):
        raise ValueError(
            f"symbol={symbol!r}: synthetic symbols are DEMOUSDT, DEMO2USDT, DEMO3USDT …"
        )
    candles, open_interest = generate_demo_market(
        start, days, seed=seed, interval_minutes=ARCHIVE_INTERVAL_MINUTES
    )
    root = Path(root)
    interval = f"{ARCHIVE_INTERVAL_MINUTES}m"
    written: list[Path] = []

    klines = _klines_table(candles)
    per_day = _MINUTES_PER_DAY // ARCHIVE_INTERVAL_MINUTES
    for index in range(days):
        day = start + timedelta(days=index)
        path = root / daily_relative_path(KLINES, symbol, day, interval, ".csv.gz")
        _write_csv_gz(path, klines.iloc[index * per_day : (index + 1) * per_day])
        written.append(path)

    metrics = _metrics_table(open_interest, candles, symbol)
    # File D holds (D 00:00, D+1 00:00]: the instant one interval earlier falls on day D.
    file_day = (open_interest["ts"] - pd.Timedelta(minutes=ARCHIVE_INTERVAL_MINUTES)).dt.date
    for day, rows in metrics.groupby(file_day.to_numpy(), sort=True):
        path = root / daily_relative_path(METRICS, symbol, day, interval, ".csv.gz")
        _write_csv_gz(path, rows)
        written.append(path)

    note = root / UM_DAILY / synthetic_note_name(symbol)
    write_bytes_atomically(note, _synthetic_note(symbol, start, days, seed).encode())
    written.append(note)
    return written


def _validate_generator_arguments(
    days: int,
    seed: int,
    interval_minutes: int,
    start_price: float,
    start_open_interest: float,
    annual_volatility: float,
) -> None:
    for name, value in (("days", days), ("seed", seed), ("interval_minutes", interval_minutes)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name}={value!r}: expected an integer")
    if days < 1:
        raise ValueError(f"days={days}: must be at least 1")
    if seed < 0:
        raise ValueError(f"seed={seed}: must be zero or positive")
    if interval_minutes < 1 or _MINUTES_PER_DAY % interval_minutes:
        raise ValueError(f"interval_minutes={interval_minutes}: must divide a day (1, 5, 15, …)")
    for name, value in (
        ("start_price", start_price),
        ("start_open_interest", start_open_interest),
        ("annual_volatility", annual_volatility),
    ):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name}={value!r}: must be a positive number")


def _random_streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(_STREAMS, children, strict=True)
    }


def _phi(half_life_minutes: float, interval_minutes: int) -> float:
    return 0.5 ** (interval_minutes / half_life_minutes)


def _ar1(innovations: np.ndarray, phi: float, initial: float = 0.0) -> np.ndarray:
    """``x[t] = phi·x[t−1] + innovations[t]`` with ``x[−1] = initial``, without a loop over t.

    Inside a block of K steps, ``x[j] = phi^j·(phi·carry + Σ_{i≤j} phi^−i·e[i])`` is one cumsum;
    only the per-block carries are chained in Python. K depends on phi alone (never on the
    length), so a longer series computes its prefix with exactly the same operations.
    """
    block = int(min(_MAX_BLOCK, max(1.0, _MAX_GROWTH_LOG // -np.log(phi))))
    blocks = -(-innovations.size // block)
    padded = np.zeros(blocks * block)
    padded[: innovations.size] = innovations
    offsets = np.arange(block)
    partial = np.cumsum(padded.reshape(blocks, block) * phi**-offsets, axis=1)
    block_tail = phi ** (block - 1) * partial[:, -1]
    carries = np.empty(blocks)
    carry = initial
    for index in range(blocks):
        carries[index] = carry
        carry = phi**block * carry + block_tail[index]
    return (phi**offsets * (phi * carries[:, None] + partial)).ravel()[: innovations.size]


def _jumps(uniform: np.ndarray, steps_per_day: int) -> np.ndarray:
    """Occasional jumps as log-returns (zero elsewhere); ``uniform`` is (candles, 3)."""
    happens = uniform[:, 0] < _JUMPS_PER_DAY / steps_per_day
    size = _JUMP_MIN + _JUMP_MEAN_EXCESS * -np.log1p(-uniform[:, 1])
    sign = np.where(uniform[:, 2] < _JUMP_DOWN_SHARE, -1.0, 1.0)
    return np.where(happens, sign * size, 0.0)


def _volatility_multiplier(
    normal: np.ndarray, initial: np.ndarray, jump: np.ndarray, interval_minutes: int
) -> np.ndarray:
    """exp(log-volatility) with mean square about 1, flaring for hours after each jump."""
    log_volatility = np.zeros(len(jump))
    for column, (half_life, std) in enumerate(_VOLATILITY_COMPONENTS):
        phi = _phi(half_life, interval_minutes)
        log_volatility += _ar1(
            normal[:, column] * std * np.sqrt(1 - phi**2), phi, initial=std * initial[column]
        )
    # A jump excites the volatility of the following candles, not its own.
    excitation = _ar1(
        _JUMP_EXCITATION * np.concatenate(([0.0], np.abs(jump[:-1]))),
        _phi(_EXCITATION_HALF_LIFE_MINUTES, interval_minutes),
    )
    variance = sum(std**2 for _, std in _VOLATILITY_COMPONENTS)
    return np.exp(log_volatility + excitation - variance)


def _price_decimals(price: float) -> int:
    """About six significant digits, like Binance ticks (0.1 at 50,000; 0.01 at 3,000)."""
    return max(0, 5 - int(np.floor(np.log10(price))))


def _wicks(
    uniform: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    sigma: np.ndarray,
    jump: np.ndarray,
    decimals: int,
) -> tuple[np.ndarray, np.ndarray]:
    """High and low beyond the body, on the tick grid; ``uniform`` is (candles, 5)."""
    exponential = -np.log1p(-uniform[:, :3])
    spike = np.where(uniform[:, 3] < _SPIKE_PROBABILITY, _SPIKE_SCALE * exponential[:, 2], 0.0)
    spike_up = uniform[:, 4] < 0.5
    up = sigma * (_WICK_SCALE * exponential[:, 0] + np.where(spike_up, spike, 0.0))
    down = sigma * (_WICK_SCALE * exponential[:, 1] + np.where(spike_up, 0.0, spike))
    up += _JUMP_OVERSHOOT * np.maximum(jump, 0.0)
    down += _JUMP_OVERSHOOT * np.maximum(-jump, 0.0)
    body_top, body_bottom = np.maximum(open_, close), np.minimum(open_, close)
    scale = 10.0**decimals
    high = np.maximum(np.ceil(body_top * np.exp(up) * scale) / scale, body_top)
    low = np.minimum(np.floor(body_bottom * np.exp(-down) * scale) / scale, body_bottom)
    return high, np.maximum(low, 1.0 / scale)


def _add_volumes(
    candles: pd.DataFrame,
    random: dict[str, np.random.Generator],
    move: np.ndarray,
    volatility_ratio: np.ndarray,
    typical_volume: float,
    interval_minutes: int,
) -> None:
    """Add volume, quote volume, trades and the taker-buy columns to OHLC ``candles``.

    ``move`` is each candle's log-return in units of its volatility; ``volatility_ratio`` its
    volatility over the base volatility. Both raise volume; the move's sign tilts the taker side.
    """
    count = len(candles)
    open_, close = candles["open"].to_numpy(), candles["close"].to_numpy()
    high, low = candles["high"].to_numpy(), candles["low"].to_numpy()
    move = np.clip(move, -_MOVE_CAP, _MOVE_CAP)
    noise = random["volume"].standard_normal((count, 2))
    volume = typical_volume * np.exp(
        _VOLUME_VOLATILITY_ELASTICITY * np.log(volatility_ratio)
        + _VOLUME_MOVE_SENSITIVITY * (np.abs(move) - _MEAN_ABS_NORMAL)
        + _VOLUME_NOISE * noise[:, 0]
    )
    volume = np.maximum(np.round(volume, _QUANTITY_DECIMALS), 10.0**-_QUANTITY_DECIMALS)
    mean_trade_size = typical_volume / (_TRADES_PER_MINUTE * interval_minutes)
    trades = np.rint(volume / mean_trade_size * np.exp(_TRADES_NOISE * noise[:, 1]))

    # A convex combination of open, close and mid-range always lies inside [low, high].
    weights = random["vwap"].random((count, 3)) + 0.2
    weights /= weights.sum(axis=1, keepdims=True)
    vwap = weights[:, 0] * open_ + weights[:, 1] * close + weights[:, 2] * (high + low) / 2
    buy_share = np.clip(
        0.5 + _TAKER_TILT * np.tanh(move) + _TAKER_NOISE * random["flow"].standard_normal(count),
        0.05,
        0.95,
    )
    taker_buy_volume = np.round(volume * buy_share, _QUANTITY_DECIMALS)

    candles["volume"] = volume
    candles["quote_volume"] = np.round(volume * vwap, _QUOTE_DECIMALS)
    candles["trades"] = np.maximum(trades, 1).astype(np.int64)
    candles["taker_buy_volume"] = taker_buy_volume
    candles["taker_buy_quote_volume"] = np.round(taker_buy_volume * vwap, _QUOTE_DECIMALS)


def _open_interest_log_path(
    noise: np.ndarray,
    log_return: np.ndarray,
    sigma: np.ndarray,
    trend: np.ndarray,
    trend_std: float,
    base_sigma: float,
    interval_minutes: int,
) -> np.ndarray:
    """log(OI / start OI) at the end of each candle: calm inflow, cascades, mean reversion."""
    steps_per_day = _MINUTES_PER_DAY // interval_minutes
    calm = np.clip(2.0 - sigma / base_sigma, 0.0, 1.0)
    inflow = (
        _OI_CALM_INFLOW_PER_DAY
        / steps_per_day
        * calm
        * (1.0 + _OI_TREND_BOOST * np.abs(trend) / trend_std)
    )
    # Leverage is liquidated by the size of a move, but traders also use less of it when the
    # market is volatile: the yardstick is the geometric mean of the base and current volatility.
    yardstick = np.sqrt(sigma * base_sigma)
    excess = np.maximum(np.abs(log_return) / yardstick - _OI_CASCADE_THRESHOLD, 0.0)
    cascade = np.minimum(_OI_CASCADE_PER_SIGMA * excess, _OI_CASCADE_CAP)
    step_noise = _OI_NOISE_PER_5M * np.sqrt(interval_minutes / 5) * noise
    outflow = _OI_OUTFLOW_PER_DAY / steps_per_day
    return _ar1(
        inflow - outflow - cascade + step_noise, _phi(_OI_HALF_LIFE_MINUTES, interval_minutes)
    )


def _klines_table(candles: pd.DataFrame) -> pd.DataFrame:
    """Candles in the archive's kline columns, times as epoch milliseconds."""
    open_ms = candles["open_time"].to_numpy("datetime64[ms]").astype(np.int64)
    return pd.DataFrame(
        {
            "open_time": open_ms,
            "open": candles["open"],
            "high": candles["high"],
            "low": candles["low"],
            "close": candles["close"],
            "volume": candles["volume"],
            "close_time": open_ms + ARCHIVE_INTERVAL_MINUTES * 60_000 - 1,
            "quote_volume": candles["quote_volume"],
            "count": candles["trades"],
            "taker_buy_volume": candles["taker_buy_volume"],
            "taker_buy_quote_volume": candles["taker_buy_quote_volume"],
            "ignore": 0,
        }
    )


def _metrics_table(open_interest: pd.DataFrame, candles: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """Open interest in the archive's metrics columns, labelled by the snapshot instant.

    The taker long/short volume ratio of instant T is the taker buy/sell ratio of the candle
    that ends at T; the account long/short ratios are left empty (as in the real sample).
    """
    sell = candles["volume"].to_numpy() - candles["taker_buy_volume"].to_numpy()
    ratio = np.full(len(open_interest), np.nan)
    ratio[1:] = np.round(
        np.divide(
            candles["taker_buy_volume"].to_numpy(),
            sell,
            out=np.full(len(sell), np.nan),
            where=sell > 0,
        ),
        _RATIO_DECIMALS,
    )
    empty = np.full(len(open_interest), np.nan)
    return pd.DataFrame(
        {
            "create_time": open_interest["ts"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "symbol": symbol,
            "sum_open_interest": open_interest["open_interest"],
            "sum_open_interest_value": open_interest["open_interest_value"],
            "count_toptrader_long_short_ratio": empty,
            "sum_toptrader_long_short_ratio": empty,
            "count_long_short_ratio": empty,
            "sum_taker_long_short_vol_ratio": ratio,
        }
    )


def _write_csv_gz(path: Path, table: pd.DataFrame) -> None:
    # mtime=0 and no embedded file name: the same table always gives the same bytes.
    text = table.to_csv(index=False, lineterminator="\n")
    write_bytes_atomically(path, gzip.compress(text.encode(), mtime=0))


def _synthetic_note(symbol: str, start: date, days: int, seed: int) -> str:
    last = start + timedelta(days=days - 1)
    regenerate = (
        f"`liqheat demo-data --start {start.isoformat()} --days {days} --seed {seed}`"
        if symbol == DEMO_SYMBOL
        else f"`liqheat_pipeline.lib.demo.market.write_demo_archive(root, "
        f"date.fromisoformat('{start.isoformat()}'), {days}, seed={seed}, symbol='{symbol}')` "
        "(as `scripts/bench_symbols.py` does)"
    )
    return f"""# {symbol} is SYNTHETIC

Every `{symbol}` file under this directory was generated by
`liqheat_pipeline.lib.demo.market` (seed {seed}, {start.isoformat()} … {last.isoformat()}).
It is **not** Binance market data and must never be presented as such. It imitates the
archive layout and formats so the pipeline can run offline:

* `klines/{symbol}/5m/`: gzip CSV with the archive header, epoch-millisecond times.
* `metrics/{symbol}/`: gzip CSV in the pre-2026-06-25 convention (file D holds the
  snapshots in (D 00:00, D+1 00:00], labelled by the snapshot instant). The file for
  {(start - timedelta(days=1)).isoformat()} holds only the {start.isoformat()} 00:00 snapshot.
  The account long/short ratio columns are empty.

Regenerate with {regenerate}.
"""
