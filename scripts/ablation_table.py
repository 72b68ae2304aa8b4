"""Markdown table of an ablation from two `liqheat evaluate --json` files (choice, confirmation).

    python scripts/ablation_table.py choice.json confirmation.json

Rows are sorted by the declared criterion on the choice window (docs/validation.md); each
window shows the criterion, spearman and top-decile recall per side, and the price-only
baseline's figures once in the header row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _load(path: Path) -> dict[str, dict]:
    return {row["config"]: row for row in json.loads(path.read_text())["summary"]}


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("choice", type=Path)
    parser.add_argument("confirmation", type=Path)
    arguments = parser.parse_args()
    choice, confirmation = _load(arguments.choice), _load(arguments.confirmation)
    metrics = ("criterion", "spearman_long", "spearman_short", "top10_long", "top10_short")
    header = ["configuration"] + [
        f"{window} {m}" for window in ("choice", "confirm") for m in metrics
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    any_row = next(iter(choice.values()))
    any_confirm = next(iter(confirmation.values()))
    baseline = ["**baseline_range** (price only)"]
    for row in (any_row, any_confirm):
        baseline += [
            "",
            _cell(row["baseline_spearman_long"]),
            _cell(row["baseline_spearman_short"]),
            _cell(row["baseline_top10_long"]),
            _cell(row["baseline_top10_short"]),
        ]
    print("| " + " | ".join(baseline) + " |")
    ordered = sorted(
        choice,
        key=lambda name: (
            choice[name]["criterion"] is None,
            -(choice[name]["criterion"] or 0.0),
            -(choice[name]["tie_break"] or 0.0),
        ),
    )
    for name in ordered:
        cells = [name.replace("|", "\\|")]
        for row in (choice[name], confirmation.get(name, {})):
            cells += [_cell(row.get(metric)) for metric in metrics]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
