"""The model configuration: validated before any computation, stored with every output.

``ModelConfig.assumptions(symbol)`` is the stable, JSON-able record of everything that shapes a
symbol's outputs (every option, the bracket tables in use, the formulae); its sha256 prefix is the
configuration hash carried in the model state, so a day computed under one configuration is never
continued under another.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from numbers import Real
from pathlib import Path
from typing import Any

from liqheat_pipeline.lib.engine.brackets import shipped_tables, tables_for
from liqheat_pipeline.lib.engine.liquidation import FORMULA_NAME
from liqheat_pipeline.lib.symbols import SYMBOL_RULE, is_symbol

SPEC_VERSION = "model.md v2"
# Bumped whenever the engine's results change for the same inputs and options.
ENGINE_VERSION = 2
SIDE_MODELS = ("candle", "taker", "symmetric")
ENTRY_PRICES = ("vwap", "hlc3", "close")
# Step 6: the closed share of open interest (v2) or of the modelled book (v1, for comparison);
# "_net" first subtracts the candle's consumed notional from the closed notional.
CLOSURE_MODELS = ("oi_share_net", "oi_share", "modelled_share_net", "modelled_share")
NET_CLOSURE_MODELS = ("oi_share_net", "modelled_share_net")
MODELLED_CLOSURE_MODELS = ("modelled_share_net", "modelled_share")
# v1 names, rejected with their replacement: accepting them would silently keep a rule that v2
# replaced as the default, or silently change what an old configuration file means.
RENAMED_CLOSURE_MODELS = {
    "proportional_net": "modelled_share_net",
    "proportional": "modelled_share",
}
BRACKET_RULES = ("by_candle_date",)
INTERVALS_MINUTES = (1, 5)
# level_id keeps two decimal digits for the tier index.
MAX_TIERS = 100
# A level whose remaining notional falls below this share of its opening notional is closed.
DUST_SHARE = 1e-9
AUTO_BUCKET_SHARE = 0.001
AUTO_BUCKET_RULE = "auto: about 0.1 % of the first price, on a 1-2-5 step, fixed on the first day"

_WEIGHT_SUM_TOLERANCE = 1e-9


class ModelConfigError(ValueError):
    """An invalid model option; the message names the field and what is wrong."""


# The default leverage mix: every tier from 1x to Binance's 125x maximum, weighted by 1/L (the
# share of positions falls as leverage rises). Chosen with the side and entry defaults below by
# the criterion declared in docs/validation.md, on 2025-12-01…15, confirmed on 12-16…30.
DEFAULT_LEVERAGES = (1, 2, 3, 5, 10, 20, 25, 50, 75, 100, 125)


def inverse_leverage_mix(leverages: tuple[int, ...]) -> tuple[tuple[int, float], ...]:
    """Weights proportional to 1 / L over ``leverages``, summing to 1."""
    total = math.fsum(1.0 / leverage for leverage in leverages)
    return tuple((leverage, 1.0 / leverage / total) for leverage in leverages)


@dataclass(frozen=True)
class ModelConfig:
    leverage_tiers: tuple[tuple[int, float], ...] = inverse_leverage_mix(DEFAULT_LEVERAGES)
    side_model: str = "symmetric"
    entry_price: str = "close"
    closure_model: str = "oi_share_net"
    bucket_sizes: tuple[tuple[str, float], ...] = (("BTCUSDT", 100.0), ("ETHUSDT", 5.0))
    n_rep: float = 10_000.0
    interval_minutes: int = 5
    bracket_rule: str = "by_candle_date"

    def __post_init__(self) -> None:
        # Canonical forms (sorted tiers and symbols), so equal models hash equal.
        object.__setattr__(self, "leverage_tiers", _tiers(self.leverage_tiers))
        object.__setattr__(self, "bucket_sizes", _bucket_sizes(self.bucket_sizes))
        _choice("side_model", self.side_model, SIDE_MODELS)
        _choice("entry_price", self.entry_price, ENTRY_PRICES)
        if self.closure_model in RENAMED_CLOSURE_MODELS:
            raise ModelConfigError(
                f"closure_model: {self.closure_model!r} is the model v1 name; it is now "
                f"{RENAMED_CLOSURE_MODELS[self.closure_model]!r} (the v1 rule, kept for "
                "comparison). The v2 default is 'oi_share_net' (docs/model.md, step 6)"
            )
        _choice("closure_model", self.closure_model, CLOSURE_MODELS)
        _choice("bracket_rule", self.bracket_rule, BRACKET_RULES)
        object.__setattr__(self, "n_rep", _n_rep(self.n_rep))
        if _is_bool(self.interval_minutes) or self.interval_minutes not in INTERVALS_MINUTES:
            raise ModelConfigError(
                f"interval_minutes: must be one of {INTERVALS_MINUTES}, "
                f"got {self.interval_minutes!r}"
            )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> ModelConfig:
        """Build from plain data (JSON): tiers and bucket sizes as {key: value} or [[k, v], ...]."""
        if not isinstance(mapping, Mapping):
            raise ModelConfigError(f"model configuration must be a mapping, got {mapping!r}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ModelConfigError(
                f"{unknown[0]}: unknown model option (known: {', '.join(sorted(known))})"
            )
        values = dict(mapping)
        for name in ("leverage_tiers", "bucket_sizes"):
            if name in values:
                values[name] = _pairs(name, values[name])
        return cls(**values)

    @classmethod
    def from_json_file(cls, path: str | Path) -> ModelConfig:
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ModelConfigError(
                f"{path}: cannot read the model configuration: {error}"
            ) from error
        except json.JSONDecodeError as error:
            raise ModelConfigError(
                f"{path}, line {error.lineno}: not valid JSON: {error.msg}"
            ) from error
        try:
            return cls.from_mapping(document)
        except ModelConfigError as error:
            raise ModelConfigError(f"{path}: {error}") from error

    def bucket_size_for(self, symbol: str) -> float | None:
        """The configured bucket size, or None when it is decided from the first price."""
        return dict(self.bucket_sizes).get(symbol)

    def assumptions(self, symbol: str) -> dict[str, Any]:
        """Every option, the bracket tables and formulae that shape ``symbol``'s outputs."""
        size = self.bucket_size_for(symbol)
        return {
            "spec": SPEC_VERSION,
            "engine_version": ENGINE_VERSION,
            "symbol": symbol,
            "leverage_tiers": [
                {"tier_index": index, "leverage": leverage, "weight": weight}
                for index, (leverage, weight) in enumerate(self.leverage_tiers)
            ],
            "side_model": self.side_model,
            "entry_price": self.entry_price,
            "closure_model": self.closure_model,
            "bucket_size": size if size is not None else AUTO_BUCKET_RULE,
            "n_rep": self.n_rep,
            "interval_minutes": self.interval_minutes,
            "bracket_rule": self.bracket_rule,
            "margin_brackets": [
                {
                    "table_symbol": table.symbol,
                    "version": table.version,
                    "effective_from": table.effective_from.isoformat(),
                    "date_basis": table.date_basis,
                    "source": table.source,
                    "brackets": [
                        [b.floor, b.cap, b.max_leverage, b.mmr, b.maint_amount]
                        for b in table.brackets
                    ],
                }
                for table in tables_for(symbol)
            ],
            "liquidation_formula": {
                "name": FORMULA_NAME,
                "long": "p * (1 - 1/L - cum/N_rep) / (1 - MMR)",
                "short": "p * (1 + 1/L + cum/N_rep) / (1 + MMR)",
                "leverage_cap": "L is capped to the max leverage of the bracket holding N_rep",
            },
            "delta_oi": "OI(t + interval) - OI(t) in base units; missing either end = OI gap",
            "consumption_price": "mark-price high/low where a mark candle exists, else last price",
            "dust_share": DUST_SHARE,
        }

    def assumptions_json(self, symbol: str) -> str:
        return json.dumps(self.assumptions(symbol), sort_keys=True, ensure_ascii=False)

    def config_hash(self, symbol: str) -> str:
        return _config_hash(self, symbol)


@lru_cache(maxsize=256)
def _config_hash(config: ModelConfig, symbol: str) -> str:
    """The engine checks the hash on every daily run; building the assumptions JSON costs
    ~0.15 ms, so it is done once per (configuration, symbol). Equal configurations have equal
    canonical assumptions (see ``__post_init__``), so they may share the cached value."""
    return hashlib.sha256(config.assumptions_json(symbol).encode("utf-8")).hexdigest()[:12]


def auto_bucket_size(first_price: float) -> float:
    """About 0.1 % of ``first_price``, rounded (in log terms) to the nearest 1-2-5 step."""
    if not (math.isfinite(first_price) and first_price > 0):
        raise ValueError(f"first price must be a positive number, got {first_price!r}")
    target = first_price * AUTO_BUCKET_SHARE
    exponent = math.floor(math.log10(target))
    candidates = [m * 10.0**e for e in (exponent - 1, exponent, exponent + 1) for m in (1, 2, 5)]
    best = min(candidates, key=lambda step: abs(math.log(step / target)))
    return float(f"{best:.12g}")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not _is_bool(value)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ModelConfigError(f"{name}: must be one of {', '.join(allowed)}; got {value!r}")


def _pairs(name: str, value: Any) -> tuple[tuple[Any, Any], ...]:
    """Accept {key: value} (JSON object keys are strings) or [[key, value], ...]."""
    if isinstance(value, Mapping):
        items = list(value.items())
        if name == "leverage_tiers":
            items = [(_leverage_key(key), weight) for key, weight in items]
        return tuple(items)
    if isinstance(value, list | tuple):
        return tuple(value)
    raise ModelConfigError(f"{name}: expected a mapping or a list of pairs, got {value!r}")


def _leverage_key(key: Any) -> Any:
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    return key


def _tiers(value: Any) -> tuple[tuple[int, float], ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ModelConfigError(f"leverage_tiers: expected a non-empty list of pairs, got {value!r}")
    if len(value) > MAX_TIERS:
        raise ModelConfigError(f"leverage_tiers: at most {MAX_TIERS} tiers, got {len(value)}")
    tiers = []
    for position, pair in enumerate(value):
        where = f"leverage_tiers[{position}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ModelConfigError(f"{where}: expected a (leverage, weight) pair, got {pair!r}")
        leverage, weight = pair
        if not isinstance(leverage, int) or _is_bool(leverage) or not 1 <= leverage <= 125:
            raise ModelConfigError(
                f"{where}: leverage must be an integer from 1 to 125, got {leverage!r}"
            )
        if not _is_real(weight) or not math.isfinite(weight) or not 0 < weight <= 1:
            raise ModelConfigError(f"{where}: weight must be a number in (0, 1], got {weight!r}")
        tiers.append((int(leverage), float(weight)))
    leverages = [leverage for leverage, _ in tiers]
    repeated = sorted({leverage for leverage in leverages if leverages.count(leverage) > 1})
    if repeated:
        raise ModelConfigError(f"leverage_tiers: leverage {repeated[0]} appears more than once")
    total = math.fsum(weight for _, weight in tiers)
    if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
        raise ModelConfigError(
            f"leverage_tiers: weights must sum to 1 (within {_WEIGHT_SUM_TOLERANCE}), got {total!r}"
        )
    return tuple(sorted(tiers))


def _bucket_sizes(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, list | tuple):
        raise ModelConfigError(f"bucket_sizes: expected a list of (symbol, size), got {value!r}")
    sizes: dict[str, float] = {}
    for position, pair in enumerate(value):
        where = f"bucket_sizes[{position}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ModelConfigError(f"{where}: expected a (symbol, size) pair, got {pair!r}")
        symbol, size = pair
        if not is_symbol(symbol):
            raise ModelConfigError(
                f"{where}: symbol must look like BTCUSDT ({SYMBOL_RULE}), got {symbol!r}"
            )
        if not _is_real(size) or not math.isfinite(size) or size <= 0:
            raise ModelConfigError(f"{where}: size for {symbol} must be > 0, got {size!r}")
        if symbol in sizes:
            raise ModelConfigError(f"{where}: {symbol} appears more than once")
        sizes[symbol] = float(size)
    return tuple(sorted(sizes.items()))


def _n_rep(value: Any) -> float:
    # The representative notional must fall inside every shipped table.
    ceiling = min(table.brackets[-1].cap for table in shipped_tables())
    if not _is_real(value) or not math.isfinite(value) or not 0 < value <= ceiling:
        raise ModelConfigError(
            f"n_rep: must be a number > 0 and at most {ceiling:,.0f} (the smallest top bracket "
            f"cap of the shipped tables), got {value!r}"
        )
    return float(value)
