"""`liqheat evaluate` end to end on the real sample: scores, grids, nothing written, bad input."""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd
import pytest
from scipy import stats

from liqheat_pipeline.cli import main
from liqheat_pipeline.lib import evaluation
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.model.days import run_days

pytestmark = pytest.mark.real_data
DAYS = ["--start", "2025-12-02", "--end", "2025-12-03", "--history-start", "2025-12-01"]


@pytest.fixture
def environment(monkeypatch, tmp_path, real_binance_dir, real_liquidations_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIQHEAT_DATA_DIR", str(real_binance_dir))
    monkeypatch.setenv("LIQHEAT_LIQUIDATIONS_DIR", str(real_liquidations_dir))
    monkeypatch.setenv("LIQHEAT_DB", str(tmp_path / "never-written.duckdb"))
    monkeypatch.delenv("LIQHEAT_MODEL_CONFIG", raising=False)
    return tmp_path


def _realized_hours(liquidations_dir, start: str, end: str) -> pd.DataFrame:
    """The CoinGlass file read with plain pandas (independent of the readers)."""
    raw = pd.read_csv(next((liquidations_dir / "coinglass" / "BTC").glob("*.csv")))
    raw["bucket_start"] = pd.to_datetime(raw["timestamp"], unit="ms")
    return raw[(raw["bucket_start"] >= start) & (raw["bucket_start"] < end)]


def test_a_grid_is_scored_against_realized_hours_and_nothing_is_written(
    environment, real_binance_dir, real_liquidations_dir, capsys
):
    output = environment / "scores.json"
    status = main(
        ["evaluate", *DAYS, "--vary", "side_model=candle,symmetric", "--json", str(output)]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "BTC all contracts; Binance+Bybit+OKX" in printed
    assert "side_model=candle" in printed and "side_model=symmetric" in printed
    assert not (environment / "never-written.duckdb").exists()

    document = json.loads(output.read_text())
    rows = pd.DataFrame(document["rows"])
    assert set(rows["config"]) == {"defaults side_model=candle", "defaults side_model=symmetric"}
    # 3 sides × (model: 4 metrics, baseline_return: 4, baseline_range: 3 without partial).
    assert rows.groupby("config").size().tolist() == [33, 33]
    # The baselines do not depend on the model configuration.
    baselines = rows[rows["predictor"] != "model"].pivot_table(
        index=["side", "predictor", "metric"], columns="config", values="value"
    )
    assert (baselines.iloc[:, 0] == baselines.iloc[:, 1]).all()
    # 48 hours scored, none missing in these two days.
    assert set(rows["n_buckets"]) == {48}

    # The model's hourly spearman, recomputed from the engine's ledger and the raw CSV.
    config = ModelConfig(side_model="symmetric")
    window = evaluation.ScoringPeriod(date(2025, 12, 1), date(2025, 12, 2), date(2025, 12, 4))
    market = evaluation.load_market(real_binance_dir, "BTCUSDT", window.days)
    ledger = pd.concat(
        [r.tables["candle_ledger"] for r in run_days("BTCUSDT", window.days, market, config, None)]
    )
    ledger = ledger[ledger["ts"] >= "2025-12-02"].astype({"side": str})
    ledger["bucket_start"] = ledger["ts"].dt.floor("60min")
    model = ledger.pivot_table(
        index="bucket_start", columns="side", values="consumed_usd", aggfunc="sum"
    )
    realized = _realized_hours(real_liquidations_dir, "2025-12-02", "2025-12-04")
    realized = realized.set_index("bucket_start")
    expected = stats.spearmanr(model["long"], realized.loc[model.index, "longUsd"]).statistic
    stored = rows.query(
        "config == 'defaults side_model=symmetric' and side == 'long' and predictor == 'model' "
        "and metric == 'spearman'"
    )["value"]
    assert stored.item() == pytest.approx(expected, rel=1e-12)

    summary = pd.DataFrame(document["summary"]).set_index("config")
    for name, line in summary.iterrows():
        partial = rows.query(
            f"config == '{name}' and predictor == 'model' and metric == 'partial_spearman'"
        ).set_index("side")["value"]
        assert line["criterion"] == pytest.approx((partial["long"] + partial["short"]) / 2)


def test_configuration_files_name_their_configurations(environment, capsys):
    path = environment / "grid.json"
    path.write_text(
        json.dumps(
            {
                "configurations": {
                    "v1 rule": {"closure_model": "modelled_share_net"},
                    "low leverage": {"leverage_tiers": {"2": 0.5, "3": 0.5}},
                }
            }
        )
    )
    assert main(["evaluate", *DAYS, "--config", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "v1 rule" in printed and "low leverage" in printed


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--vary", "side_model"], r"--vary 'side_model': expected OPTION=VALUE"),
        (["--vary", "side_model=colour"], r"side_model: must be one of candle, taker, symmetric"),
        (
            ["--start", "2025-11-01", "--history-start", "2025-11-01"],
            r"missing archive file .*BTCUSDT-5m-2025-11-01",
        ),
        (["--symbol", "ETHUSDT"], r"ETHUSDT: no realized liquidations"),
        (["--start", "2025-12-05", "--end", "2025-12-04"], r"history start <= score start"),
    ],
)
def test_bad_input_is_a_usage_error_naming_the_problem(environment, capsys, arguments, message):
    argv = ["evaluate", "--start", "2025-12-01", "--end", "2025-12-01", *arguments]
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_config_file_that_is_not_json_names_file_and_line(environment, capsys):
    path = environment / "broken.json"
    path.write_text('{\n  "side_model": "candle",\n  "n_rep": ,\n}\n')
    with pytest.raises(SystemExit):
        main(["evaluate", *DAYS, "--config", str(path)])
    assert "broken.json, line 3: not valid JSON" in capsys.readouterr().err


def test_an_implausible_archive_file_is_a_usage_error_naming_it(environment, capsys, monkeypatch):
    """evaluate checks the archive files with the ingest's plausibility limits (settings)."""
    monkeypatch.setenv("LIQHEAT_MAX_CANDLE_RANGE_PCT", "0.1")
    with pytest.raises(SystemExit) as raised:
        main(["evaluate", *DAYS])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "BTCUSDT-5m-2025-12-01" in error and "LIQHEAT_MAX_CANDLE_RANGE_PCT" in error
