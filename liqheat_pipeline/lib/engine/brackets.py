"""Dated Binance USDⓈ-M maintenance-margin brackets, read from the shipped data file.

``data/margin_brackets.json`` holds one or more dated tables per symbol plus a generic table
(symbol ``'*'``) for symbols without their own. A table applies from its ``effective_from`` day
until the next table of the same symbol; days before a symbol's first table use that first table.
A notional N falls in the bracket with ``floor < N <= cap`` (the first bracket also holds 0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path

import pandas as pd

GENERIC_SYMBOL = "*"
DATA_FORMAT = "liqheat-margin-brackets/1"
# Relative tolerance for cum_i = cum_(i-1) + floor_i * (mmr_i - mmr_(i-1)); the published
# numbers are exact decimals, so only float rounding is allowed for.
_CUM_TOLERANCE = 1e-9


class BracketDataError(ValueError):
    """The bracket data file is malformed; the message names the table and bracket."""


@dataclass(frozen=True)
class Bracket:
    floor: float
    cap: float
    max_leverage: int
    mmr: float
    maint_amount: float
    table_date: date


@dataclass(frozen=True)
class BracketTable:
    symbol: str
    version: str
    effective_from: date
    date_basis: str
    source: str
    note: str
    brackets: tuple[Bracket, ...]

    def bracket(self, notional: float) -> Bracket:
        """The bracket holding ``notional`` (floor < N <= cap; N = 0 is in the first)."""
        if not notional >= 0:
            raise ValueError(f"notional must be >= 0, got {notional!r}")
        for bracket in self.brackets:
            if notional <= bracket.cap:
                return bracket
        raise ValueError(
            f"notional {notional:,.2f} exceeds the top bracket cap {self.brackets[-1].cap:,.0f} "
            f"of table {self.version}"
        )


def load_bracket_tables(path: str | Path | None = None) -> tuple[BracketTable, ...]:
    """Read and validate a bracket data file (default: the one shipped with the package)."""
    if path is None:
        text = resources.files(__package__).joinpath("data/margin_brackets.json").read_text("utf-8")
        where = "margin_brackets.json (package data)"
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BracketDataError(f"{where}: not valid JSON: {error}") from error
    if document.get("format") != DATA_FORMAT:
        raise BracketDataError(f"{where}: format must be {DATA_FORMAT!r}")
    tables = tuple(_parse_table(where, index, raw) for index, raw in enumerate(document["tables"]))
    seen: set[tuple[str, date]] = set()
    for table in tables:
        key = (table.symbol, table.effective_from)
        if key in seen:
            raise BracketDataError(f"{where}: two tables for {table.symbol} from {key[1]}")
        seen.add(key)
    if not any(table.symbol == GENERIC_SYMBOL for table in tables):
        raise BracketDataError(f"{where}: no generic table (symbol {GENERIC_SYMBOL!r})")
    return tables


def _parse_table(where: str, index: int, raw: dict) -> BracketTable:
    name = f"{where}: table {index} ({raw.get('version', '?')})"
    try:
        effective_from = date.fromisoformat(raw["effective_from"])
        brackets = tuple(
            Bracket(
                floor=float(row["floor"]),
                cap=float(row["cap"]),
                max_leverage=int(row["max_leverage"]),
                mmr=float(row["mmr"]),
                maint_amount=float(row["maint_amount"]),
                table_date=effective_from,
            )
            for row in raw["brackets"]
        )
        table = BracketTable(
            symbol=str(raw["symbol"]),
            version=str(raw["version"]),
            effective_from=effective_from,
            date_basis=str(raw["date_basis"]),
            source=str(raw["source"]),
            note=str(raw["note"]),
            brackets=brackets,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BracketDataError(f"{name}: {error!r}") from error
    _check_brackets(name, table.brackets)
    return table


def _check_brackets(name: str, brackets: tuple[Bracket, ...]) -> None:
    if not brackets:
        raise BracketDataError(f"{name}: no brackets")
    if brackets[0].floor != 0 or brackets[0].maint_amount != 0:
        raise BracketDataError(f"{name}: the first bracket must start at 0 with maint_amount 0")
    previous = None
    for number, bracket in enumerate(brackets, start=1):
        where = f"{name}, bracket {number}"
        if not bracket.cap > bracket.floor:
            raise BracketDataError(f"{where}: cap {bracket.cap} is not above floor {bracket.floor}")
        if not 0 < bracket.mmr < 1:
            raise BracketDataError(f"{where}: mmr {bracket.mmr} is not in (0, 1)")
        if bracket.max_leverage < 1:
            raise BracketDataError(f"{where}: max_leverage {bracket.max_leverage} is below 1")
        if previous is not None:
            if bracket.floor != previous.cap:
                raise BracketDataError(
                    f"{where}: floor {bracket.floor} does not continue cap {previous.cap}"
                )
            if bracket.mmr < previous.mmr or bracket.max_leverage > previous.max_leverage:
                raise BracketDataError(f"{where}: mmr falls or max_leverage rises")
            expected = maintenance_amount_step(previous, bracket)
            if abs(bracket.maint_amount - expected) > _CUM_TOLERANCE * max(1.0, expected):
                raise BracketDataError(
                    f"{where}: maint_amount {bracket.maint_amount} should be {expected} "
                    "(cum_i = cum_(i-1) + floor_i * (mmr_i - mmr_(i-1)))"
                )
        previous = bracket


def maintenance_amount_step(previous: Bracket, bracket: Bracket) -> float:
    """Binance's maintenance amount of ``bracket`` implied by the bracket below it."""
    return previous.maint_amount + bracket.floor * (bracket.mmr - previous.mmr)


@cache
def shipped_tables() -> tuple[BracketTable, ...]:
    return load_bracket_tables()


def tables_for(symbol: str) -> tuple[BracketTable, ...]:
    """The symbol's own dated tables (oldest first), or the generic table."""
    own = [table for table in shipped_tables() if table.symbol == symbol]
    chosen = own or [table for table in shipped_tables() if table.symbol == GENERIC_SYMBOL]
    return tuple(sorted(chosen, key=lambda table: table.effective_from))


def table_for(symbol: str, day: date) -> BracketTable:
    """The table in effect on ``day`` (the first table for days before it)."""
    tables = tables_for(symbol)
    in_effect = [table for table in tables if table.effective_from <= day]
    return in_effect[-1] if in_effect else tables[0]


def bracket_for(symbol: str, day: date, notional: float) -> Bracket:
    """The bracket of a position of ``notional`` USDT in ``symbol`` on ``day``."""
    return table_for(symbol, day).bracket(notional)


def bracket_table_frame() -> pd.DataFrame:
    """Every shipped bracket as rows (the generic table as symbol '*'), for SQL checks."""
    rows = [
        {
            "symbol": table.symbol,
            "effective_from": table.effective_from,
            "floor": bracket.floor,
            "cap": bracket.cap,
            "max_leverage": bracket.max_leverage,
            "mmr": bracket.mmr,
            "maint_amount": bracket.maint_amount,
        }
        for table in shipped_tables()
        for bracket in table.brackets
    ]
    return pd.DataFrame(rows)
