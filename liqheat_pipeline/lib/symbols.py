"""What a symbol name may be: the one rule settings, the model configuration, the archive layout
and the HTTP API all check against."""

from __future__ import annotations

import re

# Binance USDⓈ-M perpetual names are upper-case letters and digits (BTCUSDT, 1000PEPEUSDT).
SYMBOL_PATTERN = r"^[A-Z0-9]{2,20}$"
# The same names in any case (the HTTP API accepts btcusdt and upper-cases it).
SYMBOL_PATTERN_ANY_CASE = r"^[A-Za-z0-9]{2,20}$"
SYMBOL_RULE = "2-20 upper-case letters or digits"

_SYMBOL = re.compile(SYMBOL_PATTERN)


def is_symbol(name: object) -> bool:
    return isinstance(name, str) and _SYMBOL.fullmatch(name) is not None
