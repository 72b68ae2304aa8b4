"""Runtime configuration from ``LIQHEAT_*`` environment variables, validated at load time."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from liqheat_pipeline.lib.archive.layout import PUBLIC_ARCHIVE_URL
from liqheat_pipeline.lib.archive.plausibility import (
    DEFAULT_LIMITS,
    MAX_CANDLE_RANGE_VARIABLE,
    MAX_OI_CHANGE_VARIABLE,
    MAX_VALUE_VARIABLE,
    PlausibilityLimits,
)
from liqheat_pipeline.lib.symbols import SYMBOL_RULE, is_symbol

DEFAULT_DATA_DIR = "data/binance"
DEFAULT_DB = "data/liqheat.duckdb"
DEFAULT_SYMBOLS = "BTCUSDT"
# First day of the real sample in ../shared/data/binance and of the offline demo market.
DEFAULT_START_DATE = "2025-12-01"
DEFAULT_LIQUIDATIONS_DIR = "data/liquidations"
# Day pages kept per symbol besides latest.html (a day page of BTCUSDT is ~2-3 MB).
DEFAULT_PAGE_RETENTION_DAYS = 30
# DuckDB's memory limit per connection. DuckDB keeps every block it reads cached up to its limit
# (80 % of RAM by default), so a year's checks or pages grew the process by the size of the
# tables they read; the limit bounds it (larger operators spill to disk beside the file).
DEFAULT_DUCKDB_MEMORY_MB = 512
# Days the model computes, verifies and writes per transaction: its memory grows with this, not
# with the range (defs/model/assets.py). At a synthetic year's end, 28 days of model work took
# 12.8 s and peaked at 0.53 GiB in chunks of 7, 19.0 s and 0.41 GiB in chunks of 2 (each
# transaction opens the file, checks the schema and the history and checkpoints: ~0.3 s), and
# 13.2 s and 0.70 GiB in chunks of 14.
DEFAULT_MODEL_CHUNK_DAYS = 7

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class SettingsError(ValueError):
    """An environment variable holds an invalid value; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_path: Path
    symbols: tuple[str, ...]
    start_date: date
    download: bool
    model_config_path: Path | None
    # Where LIQHEAT_DOWNLOAD fetches from: the public archive or a mirror (tests use loopback).
    archive_url: str = PUBLIC_ARCHIVE_URL
    # Observed liquidation exports (coinglass/<BASE>/*.csv); absent means no realized data.
    liquidations_dir: Path = Path(DEFAULT_LIQUIDATIONS_DIR)
    # Ingest rejects an archive file with a value beyond these (lib/archive/plausibility.py).
    plausibility: PlausibilityLimits = DEFAULT_LIMITS
    # The last daily partition (LIQHEAT_END_DATE); None: derived from the data (project.py).
    end_date: date | None = None
    # The heatmap page asset keeps the newest this many day pages per symbol.
    page_retention_days: int = DEFAULT_PAGE_RETENTION_DAYS
    # DuckDB's memory limit (MiB) for every connection the pipeline opens.
    duckdb_memory_mb: int = DEFAULT_DUCKDB_MEMORY_MB
    # Days per model transaction (LIQHEAT_MODEL_CHUNK_DAYS).
    model_chunk_days: int = DEFAULT_MODEL_CHUNK_DAYS


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the ``LIQHEAT_*`` variables (relative paths resolve against the cwd)."""
    env = os.environ if environ is None else environ
    return Settings(
        data_dir=Path(env.get("LIQHEAT_DATA_DIR") or DEFAULT_DATA_DIR),
        db_path=Path(env.get("LIQHEAT_DB") or DEFAULT_DB),
        symbols=_parse_symbols(env.get("LIQHEAT_SYMBOLS") or DEFAULT_SYMBOLS),
        start_date=_parse_date(
            "LIQHEAT_START_DATE", env.get("LIQHEAT_START_DATE") or DEFAULT_START_DATE
        ),
        end_date=(
            _parse_date("LIQHEAT_END_DATE", env["LIQHEAT_END_DATE"])
            if env.get("LIQHEAT_END_DATE")
            else None
        ),
        download=_parse_bool("LIQHEAT_DOWNLOAD", env.get("LIQHEAT_DOWNLOAD", "")),
        model_config_path=_parse_optional_file(
            "LIQHEAT_MODEL_CONFIG", env.get("LIQHEAT_MODEL_CONFIG", "")
        ),
        archive_url=_parse_url("LIQHEAT_ARCHIVE_URL", env.get("LIQHEAT_ARCHIVE_URL", "")),
        liquidations_dir=_parse_optional_directory(
            "LIQHEAT_LIQUIDATIONS_DIR",
            env.get("LIQHEAT_LIQUIDATIONS_DIR") or DEFAULT_LIQUIDATIONS_DIR,
        ),
        page_retention_days=_parse_positive_integer(
            "LIQHEAT_PAGE_RETENTION_DAYS",
            env.get("LIQHEAT_PAGE_RETENTION_DAYS", ""),
            DEFAULT_PAGE_RETENTION_DAYS,
        ),
        duckdb_memory_mb=_parse_positive_integer(
            "LIQHEAT_DUCKDB_MEMORY_MB",
            env.get("LIQHEAT_DUCKDB_MEMORY_MB", ""),
            DEFAULT_DUCKDB_MEMORY_MB,
        ),
        model_chunk_days=_parse_positive_integer(
            "LIQHEAT_MODEL_CHUNK_DAYS",
            env.get("LIQHEAT_MODEL_CHUNK_DAYS", ""),
            DEFAULT_MODEL_CHUNK_DAYS,
        ),
        plausibility=PlausibilityLimits(
            max_candle_range=_parse_positive(
                MAX_CANDLE_RANGE_VARIABLE,
                env.get(MAX_CANDLE_RANGE_VARIABLE, ""),
                DEFAULT_LIMITS.max_candle_range * 100,
            )
            / 100,
            max_oi_change=_parse_positive(
                MAX_OI_CHANGE_VARIABLE,
                env.get(MAX_OI_CHANGE_VARIABLE, ""),
                DEFAULT_LIMITS.max_oi_change * 100,
            )
            / 100,
            max_value=_parse_positive(
                MAX_VALUE_VARIABLE, env.get(MAX_VALUE_VARIABLE, ""), DEFAULT_LIMITS.max_value
            ),
        ),
    )


def _parse_symbols(raw: str) -> tuple[str, ...]:
    symbols = tuple(part.strip().upper() for part in raw.split(",") if part.strip())
    if not symbols:
        raise SettingsError(
            f"LIQHEAT_SYMBOLS={raw!r}: expected a comma list such as BTCUSDT,ETHUSDT"
        )
    for symbol in symbols:
        if not is_symbol(symbol):
            raise SettingsError(
                f"LIQHEAT_SYMBOLS={raw!r}: {symbol!r} is not a symbol ({SYMBOL_RULE})"
            )
    if len(set(symbols)) != len(symbols):
        raise SettingsError(f"LIQHEAT_SYMBOLS={raw!r}: a symbol is listed twice")
    return symbols


def _parse_date(name: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a date YYYY-MM-DD") from None


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r}: expected one of 1/0, true/false, yes/no, on/off")


def _parse_url(name: str, raw: str) -> str:
    url = raw.strip() or PUBLIC_ARCHIVE_URL
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"{name}={raw!r}: expected an http:// or https:// URL")
    return url if url.endswith("/") else f"{url}/"


def _parse_positive(name: str, raw: str, default: float) -> float:
    """A finite number above 0; empty means ``default``."""
    if not raw.strip():
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name}={raw!r}: expected a positive number such as {default:g}")
    return value


def _parse_positive_integer(name: str, raw: str, default: int) -> int:
    """A whole number of at least 1; empty means ``default``."""
    if not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise SettingsError(
            f"{name}={raw!r}: expected a whole number of at least 1 such as {default}"
        )
    return value


def _parse_optional_file(name: str, raw: str) -> Path | None:
    if not raw.strip():
        return None
    path = Path(raw.strip())
    if not path.is_file():
        raise SettingsError(f"{name}={raw!r}: no such file")
    return path


def _parse_optional_directory(name: str, raw: str) -> Path:
    """A folder that may not exist yet (then it holds nothing), but is not some other file."""
    path = Path(raw.strip())
    if path.exists() and not path.is_dir():
        raise SettingsError(f"{name}={raw!r}: exists but is not a directory")
    return path
