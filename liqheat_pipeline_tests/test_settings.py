from datetime import date
from pathlib import Path

import pytest

from liqheat_pipeline.lib.archive.plausibility import PlausibilityLimits
from liqheat_pipeline.settings import SettingsError, load_settings


def test_defaults_when_nothing_is_set():
    settings = load_settings({})
    assert settings.data_dir == Path("data/binance")
    assert settings.db_path == Path("data/liqheat.duckdb")
    assert settings.symbols == ("BTCUSDT",)
    assert settings.start_date == date(2025, 12, 1)
    assert settings.download is False
    assert settings.model_config_path is None
    assert settings.liquidations_dir == Path("data/liquidations")
    assert settings.archive_url == "https://data.binance.vision/data/"
    assert settings.duckdb_memory_mb == 512
    assert settings.model_chunk_days == 7


def test_values_are_parsed_and_normalised(tmp_path):
    config = tmp_path / "model.json"
    config.write_text("{}")
    settings = load_settings(
        {
            "LIQHEAT_DATA_DIR": "/srv/binance",
            "LIQHEAT_DB": "/srv/x.duckdb",
            "LIQHEAT_SYMBOLS": " btcusdt, ETHUSDT ",
            "LIQHEAT_START_DATE": "2024-02-29",
            "LIQHEAT_DOWNLOAD": "Yes",
            "LIQHEAT_MODEL_CONFIG": str(config),
            "LIQHEAT_DUCKDB_MEMORY_MB": " 256 ",
        }
    )
    assert settings.duckdb_memory_mb == 256
    assert settings.symbols == ("BTCUSDT", "ETHUSDT")
    assert settings.start_date == date(2024, 2, 29)
    assert settings.download is True
    assert settings.model_config_path == config


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LIQHEAT_SYMBOLS", "BTC-USDT"),
        ("LIQHEAT_SYMBOLS", " , "),
        ("LIQHEAT_SYMBOLS", "BTCUSDT,btcusdt"),
        ("LIQHEAT_START_DATE", "2025-13-01"),
        ("LIQHEAT_START_DATE", "yesterday"),
        ("LIQHEAT_DOWNLOAD", "maybe"),
        ("LIQHEAT_MODEL_CONFIG", "/nonexistent/model.json"),
        ("LIQHEAT_DUCKDB_MEMORY_MB", "0"),
        ("LIQHEAT_DUCKDB_MEMORY_MB", "1GB"),
        ("LIQHEAT_MODEL_CHUNK_DAYS", "-5"),
    ],
)
def test_invalid_value_names_the_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        load_settings({name: value})


def test_a_bad_symbol_is_named_with_the_symbol_rule():
    with pytest.raises(SettingsError) as error:
        load_settings({"LIQHEAT_SYMBOLS": "BTCUSDT,btc-usdt"})
    assert str(error.value) == (
        "LIQHEAT_SYMBOLS='BTCUSDT,btc-usdt': 'BTC-USDT' is not a symbol "
        "(2-20 upper-case letters or digits)"
    )


def test_archive_url_gets_a_trailing_slash_and_must_be_http():
    assert load_settings({"LIQHEAT_ARCHIVE_URL": "http://127.0.0.1:9/data"}).archive_url == (
        "http://127.0.0.1:9/data/"
    )
    with pytest.raises(SettingsError, match="LIQHEAT_ARCHIVE_URL"):
        load_settings({"LIQHEAT_ARCHIVE_URL": "ftp://mirror/data/"})


def test_liquidations_dir_may_be_absent_but_not_a_file(tmp_path):
    absent = tmp_path / "not-yet"
    assert load_settings({"LIQHEAT_LIQUIDATIONS_DIR": str(absent)}).liquidations_dir == absent
    assert load_settings({"LIQHEAT_LIQUIDATIONS_DIR": str(tmp_path)}).liquidations_dir == tmp_path
    a_file = tmp_path / "liquidations.csv"
    a_file.write_text("timestamp\n")
    with pytest.raises(SettingsError, match=r"LIQHEAT_LIQUIDATIONS_DIR.*not a directory"):
        load_settings({"LIQHEAT_LIQUIDATIONS_DIR": str(a_file)})


def test_plausibility_limits_default_wide_and_are_set_in_percent():
    assert load_settings({}).plausibility == PlausibilityLimits(
        max_candle_range=0.5, max_oi_change=0.5, max_value=1e15
    )
    limits = load_settings(
        {
            "LIQHEAT_MAX_CANDLE_RANGE_PCT": " 12.5 ",
            "LIQHEAT_MAX_OI_CHANGE_PCT": "200",
            "LIQHEAT_MAX_VALUE": "1e12",
        }
    ).plausibility
    assert limits == PlausibilityLimits(max_candle_range=0.125, max_oi_change=2.0, max_value=1e12)


@pytest.mark.parametrize(
    "name", ["LIQHEAT_MAX_CANDLE_RANGE_PCT", "LIQHEAT_MAX_OI_CHANGE_PCT", "LIQHEAT_MAX_VALUE"]
)
@pytest.mark.parametrize("value", ["0", "-5", "abc", "inf", "nan"])
def test_invalid_plausibility_limits_name_the_variable(name, value):
    with pytest.raises(SettingsError, match=rf"{name}='{value}': expected a positive number"):
        load_settings({name: value})
