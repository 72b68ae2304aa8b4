"""The stored model history is always one chain (issue 9, defects 1-3, model part).

Real BTCUSDT days 2025-12-01..04 are ingested and modelled once; each test works on a copy of
that DuckDB file: an earlier day re-run after its input changed, a configuration change followed
by a re-run of the first days, two concurrent `dagster asset materialize` processes, and a
corrupted stored state that the pre-write verification must catch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest

from liqheat_pipeline.defs.resources import LiqheatDatabase
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.days import days_in
from liqheat_pipeline.lib.engine.brackets import bracket_table_frame
from liqheat_pipeline.lib.engine.config import ModelConfig
from liqheat_pipeline.lib.model import store
from liqheat_pipeline.lib.model.days import run_days, starting_state
from liqheat_pipeline_tests.conftest import REPO_ROOT
from liqheat_pipeline_tests.helpers.pipeline_runs import (
    MODEL_ASSETS,
    assert_same_rows,
    failure_messages,
    load_definitions,
    materialize,
    model_rows,
    pipeline_env,
    run_checks_only,
    subprocess_env,
)

pytestmark = pytest.mark.real_data
FIRST, LAST = "2025-12-01", "2025-12-04"


@pytest.fixture(scope="module")
def stored_db(tmp_path_factory, real_binance_dir, instance):
    """12-01..04 ingested and modelled in one run."""
    db_path = tmp_path_factory.mktemp("history") / "liqheat.duckdb"
    definitions = load_definitions(pipeline_env(real_binance_dir, db_path))
    assert materialize(definitions, instance, FIRST, LAST).success
    return db_path


@pytest.fixture
def copy(stored_db, tmp_path):
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(stored_db, path)
    return path


def _execute(db_path, *statements: str) -> None:
    with warehouse.connect(db_path) as conn:
        for statement in statements:
            conn.execute(statement)


def _config_hashes(db_path) -> list[tuple[str, str]]:
    with warehouse.connect(db_path, read_only=True) as conn:
        return conn.execute(
            "SELECT CAST(day AS VARCHAR), config_hash FROM model_runs ORDER BY day"
        ).fetchall()


def _failed_checks(definitions, instance, first, last) -> set[str]:
    results = run_checks_only(definitions, instance, first, last)
    return {name for name, passed in results.items() if not passed}


def test_rerunning_an_earlier_day_whose_result_changed_is_refused_before_writing(
    copy, real_binance_dir, instance
):
    # The probe: the last candle of 12-02 widened (as a corrected archive file would).
    _execute(
        copy,
        "UPDATE candles SET high = high * 1.05, low = low * 0.95 "
        "WHERE open_time = TIMESTAMP '2025-12-02 23:55:00'",
    )
    before = model_rows(copy)
    definitions = load_definitions(pipeline_env(real_binance_dir, copy))
    result = materialize(
        definitions, instance, "2025-12-02", assets=MODEL_ASSETS, raise_on_error=False
    )
    assert not result.success
    message = failure_messages(result)
    assert "2025-12-03, 2025-12-04" in message
    assert "--partition-range 2025-12-02...2025-12-04" in message
    assert_same_rows(model_rows(copy), before)
    # The command the message names rebuilds a clean chain.
    assert materialize(definitions, instance, "2025-12-02", LAST, assets=MODEL_ASSETS).success
    assert _failed_checks(definitions, instance, FIRST, LAST) == set()


def test_a_new_configuration_cannot_rewrite_only_the_first_days(
    copy, real_binance_dir, instance, tmp_path
):
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"n_rep": 20_000}))
    before = model_rows(copy)
    env = pipeline_env(real_binance_dir, copy, LIQHEAT_MODEL_CONFIG=str(config))
    definitions = load_definitions(env)
    result = materialize(
        definitions, instance, FIRST, "2025-12-02", assets=MODEL_ASSETS, raise_on_error=False
    )
    assert not result.success
    message = failure_messages(result)
    assert "2025-12-03, 2025-12-04" in message
    assert "--partition-range 2025-12-01...2025-12-04" in message
    assert_same_rows(model_rows(copy), before)
    assert len({config_hash for _, config_hash in _config_hashes(copy)}) == 1


def test_rerunning_a_day_with_an_unchanged_result_keeps_the_later_days(
    copy, stored_db, real_binance_dir, instance
):
    definitions = load_definitions(pipeline_env(real_binance_dir, copy))
    assert materialize(definitions, instance, "2025-12-02", assets=MODEL_ASSETS).success
    assert_same_rows(model_rows(copy), model_rows(stored_db))


def test_a_corrupted_previous_state_fails_before_writing(copy, real_binance_dir, instance):
    # Halve the closure scale of 12-02's last candle: the state rebuilt from it no longer
    # equals 12-02's last ledger row, so 12-03 would start from a state the history does not
    # show.
    _execute(
        copy,
        "UPDATE candle_ledger SET closure_scale = closure_scale / 2 "
        "WHERE ts = TIMESTAMP '2025-12-02 23:55:00'",
    )
    before = model_rows(copy)
    definitions = load_definitions(pipeline_env(real_binance_dir, copy))
    result = materialize(
        definitions, instance, "2025-12-03", LAST, assets=MODEL_ASSETS, raise_on_error=False
    )
    assert not result.success
    message = failure_messages(result)
    assert "2025-12-03" in message
    assert "continuity" in message
    assert_same_rows(model_rows(copy), before)


def _materialize_process(real_binance_dir, db_path, home, config_path) -> subprocess.Popen:
    """`dagster asset materialize` of the model assets over the four days, in its own process
    (instance under ``home``, output in ``home/output.txt``)."""
    home.mkdir()
    env = subprocess_env(
        **pipeline_env(real_binance_dir, db_path, LIQHEAT_MODEL_CONFIG=config_path),
        DAGSTER_HOME=str(home),
    )
    selection = ",".join(f"btcusdt/{name}" for name in MODEL_ASSETS)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "liqheat_pipeline.definitions",
            "--select",
            selection,
            "--partition-range",
            f"{FIRST}...{LAST}",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=(home / "output.txt").open("w"),
        stderr=subprocess.STDOUT,
    )


def _wait_for(paths, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(text in path.read_text() for path in paths):
        assert time.monotonic() < deadline, f"{text!r} not in every output of {paths}"
        time.sleep(0.1)


def test_two_concurrent_runs_never_commit_a_mixed_history(
    copy, real_binance_dir, instance, tmp_path
):
    symmetric = tmp_path / "other.json"
    symmetric.write_text(json.dumps({"n_rep": 20_000}))
    homes = [tmp_path / "home_a", tmp_path / "home_b"]
    # Hold the file read-only until both model steps have started: both wait for it, then read
    # the same stored history and compute at the same time; their writes come one after the other.
    with warehouse.connect(copy, read_only=True):
        runs = [
            _materialize_process(real_binance_dir, copy, homes[0], ""),
            _materialize_process(real_binance_dir, copy, homes[1], str(symmetric)),
        ]
        _wait_for([home / "output.txt" for home in homes], 'step "btcusdt_model"')
    outputs = []
    for run, home in zip(runs, homes, strict=True):
        run.wait(timeout=300)
        outputs.append((run.returncode, (home / "output.txt").read_text()))
    hashes = {config_hash for _, config_hash in _config_hashes(copy)}
    assert len(hashes) == 1, hashes
    assert [day for day, _ in _config_hashes(copy)] == [
        "2025-12-01",
        "2025-12-02",
        "2025-12-03",
        "2025-12-04",
    ]
    losers = [output for status, output in outputs if status != 0]
    assert len(losers) <= 1, outputs
    for output in losers:
        assert "another run changed the stored model history" in output, output[-3000:]
    definitions = load_definitions(pipeline_env(real_binance_dir, copy))
    assert _failed_checks(definitions, instance, FIRST, LAST) == set()


def _compute(db_path, first: str, last: str, config: ModelConfig):
    """What the model asset does before its write: read the inputs, state and run records,
    compute the days (real library code, real DuckDB file)."""
    first_day, end_day = date.fromisoformat(first), date.fromisoformat(last) + timedelta(days=1)
    days = days_in(first_day, end_day)
    with warehouse.connect(db_path) as conn:
        market = store.load_market(conn, "BTCUSDT", first_day, end_day)
        previous = days[0] - timedelta(days=1)
        stored = store.load_state(conn, "BTCUSDT", previous)
        history = store.history_stamps(conn, "BTCUSDT", previous)
    state = starting_state(
        "BTCUSDT",
        days[0],
        date.fromisoformat(FIRST),
        stored,
        config,
        last_computed_day=None,
        latest_stored_day=None,
    )
    return run_days("BTCUSDT", days, market, config, state), history


def test_a_write_whose_history_changed_since_it_was_read_writes_nothing(
    copy, real_binance_dir, instance, tmp_path
):
    # Run B reads the stored (default) history and recomputes 12-01..02: same end state, so the
    # later days would stay valid...
    results, history = _compute(copy, FIRST, "2025-12-02", ModelConfig())
    # ...meanwhile run A rewrites the whole history under another configuration.
    config = tmp_path / "model.json"
    config.write_text(json.dumps({"n_rep": 20_000}))
    env = pipeline_env(real_binance_dir, copy, LIQHEAT_MODEL_CONFIG=str(config))
    assert materialize(load_definitions(env), instance, FIRST, LAST, assets=MODEL_ASSETS).success
    after_a = model_rows(copy)
    # B's write would mix 12-01..02 of the defaults with 12-03..04 of A: it must be refused.
    database = LiqheatDatabase(path=str(copy))
    with pytest.raises(store.HistoryChangedError) as raised, database.transaction() as conn:
        store.write_days(conn, "BTCUSDT", results, bracket_table_frame(), expected_history=history)
    message = str(raised.value)
    assert "another run changed the stored model history" in message
    assert "2025-12-01 (rewritten with configuration" in message
    assert_same_rows(model_rows(copy), after_a)
    assert len({config_hash for _, config_hash in _config_hashes(copy)}) == 1
