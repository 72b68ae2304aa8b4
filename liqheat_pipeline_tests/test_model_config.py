"""Model configuration: validation naming the field, canonical form, assumptions and hash."""

from __future__ import annotations

import json

import pytest

from liqheat_pipeline.lib.engine.config import (
    AUTO_BUCKET_RULE,
    ModelConfig,
    ModelConfigError,
    auto_bucket_size,
)


def test_defaults_are_the_validated_defaults():
    """docs/validation.md: tiers 1x…125x weighted by 1/L, symmetric sides, entry at the close,
    closures as a share of open interest net of liquidations."""
    config = ModelConfig()
    leverages = (1, 2, 3, 5, 10, 20, 25, 50, 75, 100, 125)
    assert [leverage for leverage, _ in config.leverage_tiers] == list(leverages)
    total = sum(1 / leverage for leverage in leverages)
    for leverage, weight in config.leverage_tiers:
        assert weight == pytest.approx(1 / leverage / total, rel=1e-12)
    assert (config.side_model, config.entry_price, config.closure_model) == (
        "symmetric",
        "close",
        "oi_share_net",
    )
    assert config.bucket_size_for("BTCUSDT") == 100.0
    assert config.bucket_size_for("ETHUSDT") == 5.0
    assert config.bucket_size_for("DEMOUSDT") is None
    assert (config.n_rep, config.interval_minutes, config.bracket_rule) == (
        10_000.0,
        5,
        "by_candle_date",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"leverage_tiers": ((10, 0.5), (20, 0.4))}, r"leverage_tiers: weights must sum to 1"),
        ({"leverage_tiers": ((10, 0.5), (10, 0.5))}, r"leverage_tiers: leverage 10 appears more"),
        ({"leverage_tiers": ((0, 1.0),)}, r"leverage_tiers\[0\]: leverage must be an integer"),
        ({"leverage_tiers": ((126, 1.0),)}, r"leverage_tiers\[0\]: leverage must be an integer"),
        ({"leverage_tiers": ((10.5, 1.0),)}, r"leverage_tiers\[0\]: leverage must be an integer"),
        ({"leverage_tiers": ((True, 1.0),)}, r"leverage_tiers\[0\]: leverage must be an integer"),
        ({"leverage_tiers": ((5, 1.0), (10, 0.0))}, r"leverage_tiers\[1\]: weight must be"),
        ({"leverage_tiers": ()}, r"leverage_tiers: expected a non-empty list"),
        ({"leverage_tiers": ((5,),)}, r"leverage_tiers\[0\]: expected a \(leverage, weight\)"),
        ({"side_model": "colour"}, r"side_model: must be one of candle, taker, symmetric"),
        ({"entry_price": "open"}, r"entry_price: must be one of vwap, hlc3, close"),
        (
            {"closure_model": "fifo"},
            r"closure_model: must be one of oi_share_net, oi_share, modelled_share_net, "
            r"modelled_share",
        ),
        ({"bracket_rule": "by_oi"}, r"bracket_rule: must be one of by_candle_date"),
        ({"bucket_sizes": (("BTCUSDT", 0.0),)}, r"bucket_sizes\[0\]: size for BTCUSDT must be > 0"),
        ({"bucket_sizes": (("BTCUSDT", -5),)}, r"bucket_sizes\[0\]: size for BTCUSDT must be > 0"),
        (
            {"bucket_sizes": (("btc", 5.0),)},
            r"bucket_sizes\[0\]: symbol must look like BTCUSDT \(2-20 upper-case letters or "
            r"digits\), got 'btc'",
        ),
        ({"bucket_sizes": (("ETHUSDT", 1.0), ("ETHUSDT", 2.0))}, r"bucket_sizes\[1\]: ETHUSDT"),
        ({"n_rep": 0}, r"n_rep: must be a number > 0"),
        ({"n_rep": float("nan")}, r"n_rep: must be a number > 0"),
        ({"n_rep": 1e12}, r"n_rep: .*at most 50,000,000"),
        ({"interval_minutes": 15}, r"interval_minutes: must be one of \(1, 5\)"),
        ({"interval_minutes": True}, r"interval_minutes: must be one of \(1, 5\)"),
    ],
)
def test_invalid_options_name_the_field(options, message):
    with pytest.raises(ModelConfigError, match=message):
        ModelConfig(**options)


def test_tiers_and_bucket_sizes_are_canonicalised():
    shuffled = ModelConfig(
        leverage_tiers=((100, 0.10), (5, 0.15), (50, 0.20), (10, 0.30), (25, 0.25)),
        bucket_sizes=(("ETHUSDT", 5.0), ("BTCUSDT", 100)),
    )
    ordered = ModelConfig(
        leverage_tiers=((5, 0.15), (10, 0.30), (25, 0.25), (50, 0.20), (100, 0.10)),
        bucket_sizes=(("BTCUSDT", 100.0), ("ETHUSDT", 5.0)),
    )
    assert shuffled == ordered
    assert shuffled.config_hash("BTCUSDT") == ordered.config_hash("BTCUSDT")


def test_from_mapping_accepts_json_shapes_and_defaults_the_rest():
    config = ModelConfig.from_mapping(
        {"leverage_tiers": {"10": 0.5, "20": 0.5}, "bucket_sizes": {"SOLUSDT": 0.1}}
    )
    assert config.leverage_tiers == ((10, 0.5), (20, 0.5))
    assert config.bucket_sizes == (("SOLUSDT", 0.1),)
    assert config.side_model == ModelConfig().side_model
    pairs = ModelConfig.from_mapping({"leverage_tiers": [[10, 0.5], [20, 0.5]]})
    assert pairs.leverage_tiers == config.leverage_tiers


def test_from_mapping_refuses_unknown_options():
    with pytest.raises(ModelConfigError, match="side: unknown model option"):
        ModelConfig.from_mapping({"side": "long"})


def test_from_json_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{\n  "side_model": "taker",\n  "n_rep": ,\n}\n')
    with pytest.raises(ModelConfigError, match=r"model\.json, line 3: not valid JSON"):
        ModelConfig.from_json_file(path)
    path.write_text(json.dumps({"closure_model": "lifo"}))
    with pytest.raises(ModelConfigError, match=r"model\.json: closure_model: must be one of"):
        ModelConfig.from_json_file(path)
    path.write_text(json.dumps({"side_model": "symmetric", "interval_minutes": 1}))
    assert ModelConfig.from_json_file(path) == ModelConfig(
        side_model="symmetric", interval_minutes=1
    )


def test_assumptions_record_every_option_and_the_bracket_tables():
    config = ModelConfig(
        side_model="taker",
        leverage_tiers=((5, 0.15), (10, 0.30), (25, 0.25), (50, 0.20), (100, 0.10)),
    )
    assumptions = config.assumptions("BTCUSDT")
    assert assumptions["side_model"] == "taker"
    assert assumptions["bucket_size"] == 100.0
    assert [tier["leverage"] for tier in assumptions["leverage_tiers"]] == [5, 10, 25, 50, 100]
    versions = [table["version"] for table in assumptions["margin_brackets"]]
    assert versions == ["BTCUSDT@2021-03-18", "BTCUSDT@2024-07-01", "BTCUSDT@2025-01-01"]
    other = config.assumptions("DEMOUSDT")
    assert other["bucket_size"] == AUTO_BUCKET_RULE
    assert [table["table_symbol"] for table in other["margin_brackets"]] == ["*"]
    # Stable, sorted, JSON round-trippable text.
    text = config.assumptions_json("BTCUSDT")
    assert json.loads(text) == assumptions
    assert text == ModelConfig(
        side_model="taker", leverage_tiers=config.leverage_tiers
    ).assumptions_json("BTCUSDT")


def test_config_hash_changes_with_any_option_and_with_the_symbol():
    base = ModelConfig()
    variants = [
        ModelConfig(side_model="candle"),
        ModelConfig(entry_price="vwap"),
        ModelConfig(closure_model="oi_share"),
        ModelConfig(closure_model="modelled_share_net"),
        ModelConfig(n_rep=20_000.0),
        ModelConfig(interval_minutes=1),
        ModelConfig(bucket_sizes=(("BTCUSDT", 50.0), ("ETHUSDT", 5.0))),
        ModelConfig(leverage_tiers=((10, 0.5), (20, 0.5))),
    ]
    hashes = {base.config_hash("BTCUSDT")} | {v.config_hash("BTCUSDT") for v in variants}
    assert len(hashes) == len(variants) + 1
    assert all(len(h) == 12 and int(h, 16) >= 0 for h in hashes)
    assert base.config_hash("BTCUSDT") != base.config_hash("ETHUSDT")
    # Another symbol's bucket size does not touch BTCUSDT's hash.
    assert ModelConfig(bucket_sizes=(("BTCUSDT", 100.0),)).config_hash("BTCUSDT") == (
        base.config_hash("BTCUSDT")
    )


@pytest.mark.parametrize(
    ("price", "size"),
    [(90_000.0, 100.0), (3_000.0, 2.0), (1.234, 0.001), (150.0, 0.2), (70.0, 0.05), (0.42, 0.0005)],
)
def test_auto_bucket_size_is_about_a_thousandth_on_a_125_step(price, size):
    assert auto_bucket_size(price) == size


def test_auto_bucket_size_refuses_a_non_positive_price():
    with pytest.raises(ValueError, match="first price"):
        auto_bucket_size(0.0)


@pytest.mark.parametrize(
    ("v1_name", "replacement"),
    [("proportional_net", "modelled_share_net"), ("proportional", "modelled_share")],
)
def test_v1_closure_names_are_rejected_naming_their_replacement(v1_name, replacement):
    with pytest.raises(
        ModelConfigError,
        match=rf"closure_model: '{v1_name}' is the model v1 name"
        rf".*'{replacement}'.*'oi_share_net'",
    ):
        ModelConfig.from_mapping({"closure_model": v1_name})
