"""The HTTP API over a real ``liqheat serve`` process on loopback, on real pipeline output."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liqheat_pipeline import cli
from liqheat_pipeline.api.server import is_loopback
from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.demo.market import DEMO_SYMBOL
from liqheat_pipeline.lib.heatmap import queries
from liqheat_pipeline.lib.heatmap.labels import SYNTHETIC_LABEL
from liqheat_pipeline.lib.heatmap.window import IntervalWindow
from liqheat_pipeline_tests.helpers.api_server import (
    _wait_until_listening,
    client,
    free_port,
    running_server,
)
from liqheat_pipeline_tests.helpers.demo_pipeline import (
    OBSERVED_ROWS,
    SKILL_ROWS,
    demo_database,
)

SYMBOL = DEMO_SYMBOL
START = datetime(2025, 12, 1)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_database(tmp_path_factory)


@pytest.fixture(scope="module")
def info(database: Path) -> queries.SymbolInfo:
    with warehouse.connect(database, read_only=True) as conn:
        return queries.symbol_info(conn, SYMBOL)


@pytest.fixture(scope="module")
def api(database: Path):
    with running_server(database) as base_url, client(base_url) as http:
        yield http


def _timeseries(api, **params):
    return api.get("/liquidations/heatmap-timeseries", params={"symbol": SYMBOL, **params})


def test_health_lists_the_modelled_symbols(api, database):
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": database.name, "symbols": [SYMBOL]}


def test_timeseries_is_the_sql_heatmap_reshaped(api, database, info):
    start, end = START + timedelta(hours=7), START + timedelta(hours=19)
    response = _timeseries(
        api,
        symbol=SYMBOL.lower(),
        start_time=start.isoformat() + "Z",
        end_time=end.isoformat() + "Z",
        interval="1h",
        price_bin_size=info.bucket_size * 3,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    window = IntervalWindow(start, end, 60)
    with warehouse.connect(database, read_only=True) as conn:
        cells = queries.heatmap_cells(conn, SYMBOL, window, queries.PriceBins(info.bucket_size, 3))
        ledger = conn.execute(
            "SELECT side, ts, active_usd, consumed_usd FROM candle_ledger "
            "WHERE symbol = ? AND ts >= ? AND ts < ?",
            [SYMBOL, start, end],
        ).df()
    assert [point["timestamp"] for point in body["data"]] == [
        (start + timedelta(hours=h)).isoformat() + "Z" for h in range(12)
    ]
    for point in body["data"]:
        ts = pd.Timestamp(point["timestamp"]).tz_localize(None)
        rows = cells[
            (cells["ts"] == ts) & ((cells["long_active"] > 0) | (cells["short_active"] > 0))
        ]
        assert [level["price"] for level in point["levels"]] == rows["price"].tolist()
        assert [level["long_density"] for level in point["levels"]] == rows["long_active"].tolist()
        assert [level["short_density"] for level in point["levels"]] == rows[
            "short_active"
        ].tolist()
        # Independent of the snapshots: the ledger's consumed total for the hour.
        hour = ledger[(ledger["ts"] >= ts) & (ledger["ts"] < ts + pd.Timedelta(hours=1))]
        for side in ("long", "short"):
            expected = hour.loc[hour["side"] == side, "consumed_usd"].sum()
            assert point[f"consumed_{side}"] == pytest.approx(expected, rel=1e-9)
    meta = body["meta"]
    last = ledger[ledger["ts"] == ledger["ts"].max()].set_index("side")["active_usd"]
    assert meta["active_long_usd_at_end"] == pytest.approx(last["long"], rel=1e-9)
    assert meta["active_short_usd_at_end"] == pytest.approx(last["short"], rel=1e-9)
    assert meta["consumed_usd_total"] == pytest.approx(ledger["consumed_usd"].sum(), rel=1e-9)
    assert meta["total_snapshots"] == 12
    assert meta["price_bin_size"] == info.bucket_size * 3
    assert meta["synthetic"] is True
    assert meta["config_hash"] == info.config_hash
    assert meta["assumptions"]["leverage_tiers"]
    assert meta["start_time"] == start.isoformat() + "Z"


def _stored_coverage(database: Path, start: datetime, end: datetime) -> dict | None:
    """candle_ledger.coverage at the last candle of [start, end), read directly."""
    with warehouse.connect(database, read_only=True) as conn:
        rows = conn.execute(
            """
            SELECT side, coverage FROM candle_ledger
            WHERE symbol = ? AND ts = (
                SELECT max(ts) FROM candle_ledger WHERE symbol = ? AND ts >= ? AND ts < ?)
            """,
            [SYMBOL, SYMBOL, start, end],
        ).fetchall()
    if not rows:
        return None
    sides = dict(rows)
    return {**sides, "total": (sides["long"] + sides["short"]) / 2}


@pytest.mark.parametrize(
    ("start", "end", "interval"),
    [
        (datetime(2025, 12, 2, 7), datetime(2025, 12, 2, 19), "1h"),
        (datetime(2025, 12, 4, 20), datetime(2025, 12, 5), "5m"),
        (datetime(2025, 12, 1), datetime(2025, 12, 1, 0, 30), "15m"),  # warm-up: near 0
    ],
)
def test_timeseries_meta_coverage_is_the_ledger_at_the_last_interval(
    api, database, start, end, interval
):
    response = _timeseries(
        api, start_time=start.isoformat(), end_time=end.isoformat(), interval=interval
    )
    assert response.status_code == 200, response.text
    expected = _stored_coverage(database, start, end)
    assert expected is not None and expected["long"] is not None, "the model stores coverage"
    assert response.json()["meta"]["coverage"] == pytest.approx(expected, rel=1e-12)


def test_timeseries_meta_coverage_is_null_without_model_output(api):
    body = _timeseries(api, start_time="2025-11-20T00:00:00", end_time="2025-11-20T06:00:00")
    assert body.status_code == 200, body.text
    assert body.json()["data"] == []
    assert body.json()["meta"]["coverage"] is None


def test_timeseries_meta_skill_is_the_latest_window(api):
    meta = _timeseries(
        api, start_time="2025-12-01T00:00:00", end_time="2025-12-01T01:00:00"
    ).json()["meta"]
    latest = SKILL_ROWS[SKILL_ROWS["window_end"] == SKILL_ROWS["window_end"].max()]
    expected_values: dict = {}
    for row in latest.itertuples():
        expected_values.setdefault(row.side, {}).setdefault(row.predictor, {})[row.metric] = (
            pytest.approx(row.value)
        )
    assert meta["skill"] == {
        "window_start": "2025-12-01T00:00:00Z",
        "window_end": "2025-12-05T00:00:00Z",
        "bucket_minutes": 60,
        "n_buckets": 48,
        "config_hash": "handmade0hash",
        "computed_at": "2025-12-06T00:00:00Z",
        "values": expected_values,
    }


def test_realized_returns_the_observed_buckets_of_the_window(api):
    response = api.get(
        "/liquidations/realized",
        params={
            "symbol": SYMBOL.lower(),
            "start": "2025-12-03T01:00:00-02:00",  # 03:00 UTC
            "end": "2025-12-03T12:00:00Z",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    start, end = datetime(2025, 12, 3, 3), datetime(2025, 12, 3, 12)
    rows = OBSERVED_ROWS[
        (OBSERVED_ROWS["bucket_start"] >= start) & (OBSERVED_ROWS["bucket_start"] < end)
    ]
    assert len(rows) == 8  # 9 hours, 05:00 missing in the source: absent, not 0
    assert body["data"] == [
        {
            "bucket_start": row.bucket_start.isoformat() + "Z",
            "bucket_minutes": 60,
            "long_usd": row.long_usd,
            "short_usd": row.short_usd,
            "source": row.source,
            "scope": row.scope,
        }
        for row in rows.itertuples()
    ]
    assert "2025-12-03T05:00:00Z" not in {bucket["bucket_start"] for bucket in body["data"]}
    assert body["symbol"] == SYMBOL
    assert (body["start"], body["end"]) == ("2025-12-03T03:00:00Z", "2025-12-03T12:00:00Z")
    assert body["scopes"] == [rows["scope"].iloc[0]]
    assert body["long_usd_total"] == pytest.approx(rows["long_usd"].sum())
    assert body["short_usd_total"] == pytest.approx(rows["short_usd"].sum())


def test_realized_of_a_window_without_observations_is_empty(api):
    response = api.get(
        "/liquidations/realized",
        params={"symbol": SYMBOL, "start": "2025-12-01T00:00:00", "end": "2025-12-02T00:00:00"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["data"], body["scopes"], body["long_usd_total"]) == ([], [], 0.0)


@pytest.mark.parametrize(
    ("params", "status", "parameter"),
    [
        ({"symbol": "NOPEUSDT"}, 404, "symbol"),
        ({"symbol": "no-such!"}, 422, "symbol"),
        ({"start": "yesterday"}, 422, "start"),
        ({"start": None}, 422, "start"),
        ({"end": "2025-12-02T00:00:00"}, 422, "end"),  # not after start
        ({"start": "1800-01-01T00:00:00"}, 422, "start"),
        ({"start": "2024-12-01T00:00:00"}, 400, "end"),  # more than a year
    ],
)
def test_realized_bad_parameters_get_a_4xx_naming_them(api, params, status, parameter):
    query = {
        "symbol": SYMBOL,
        "start": "2025-12-02T00:00:00",
        "end": "2025-12-03T00:00:00",
        **params,
    }
    response = api.get(
        "/liquidations/realized", params={k: v for k, v in query.items() if v is not None}
    )
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if status == 422:
        assert [error["loc"] for error in detail] == [["query", parameter]]  # once, only it
    else:
        assert detail.startswith(f"{parameter}:")


def test_offsets_and_unaligned_times_mean_the_same_utc_window(api):
    utc = _timeseries(api, start_time="2025-12-01T06:00:00Z", end_time="2025-12-01T08:00:00Z")
    shifted = _timeseries(
        api, start_time="2025-12-01T01:00:00-05:00", end_time="2025-12-01T02:57:10-05:00"
    )
    assert utc.status_code == shifted.status_code == 200
    assert utc.json() == shifted.json()


def test_leverage_filter_sums_to_the_whole(api, database):
    with warehouse.connect(database, read_only=True) as conn:
        leverages = queries.leverage_tiers(conn, SYMBOL)
    assert len(leverages) >= 2
    params = {"start_time": "2025-12-02T00:00:00", "end_time": "2025-12-03T00:00:00"}
    whole = _timeseries(api, interval="1h", **params).json()
    tiers = [_timeseries(api, interval="1h", leverage=x, **params).json() for x in leverages]
    for name in ("active_long_usd_at_end", "active_short_usd_at_end", "consumed_usd_total"):
        assert sum(tier["meta"][name] for tier in tiers) == pytest.approx(whole["meta"][name])
    assert whole["meta"]["consumed_usd_total"] > 0
    assert [tier["meta"]["leverage"] for tier in tiers] == leverages


@pytest.mark.parametrize(
    ("params", "status", "parameter"),
    [
        ({"symbol": "NOPEUSDT"}, 404, "symbol"),
        ({"symbol": "no-such!"}, 422, "symbol"),
        ({"start_time": "yesterday"}, 422, "start_time"),
        ({"end_time": "2025-12-01T00:00:00"}, 422, "end_time"),  # before start_time
        ({"start_time": "1800-01-01T00:00:00"}, 422, "start_time"),
        ({"end_time": "2026-12-01T00:00:00"}, 400, "end_time"),  # too many 5m intervals
        ({"interval": "7m"}, 422, "interval"),
        ({"price_bin_size": "0.7"}, 422, "price_bin_size"),  # not a multiple of the bucket
        ({"price_bin_size": "-10"}, 422, "price_bin_size"),
        ({"price_bin_size": "nan"}, 422, "price_bin_size"),
        ({"price_bin_size": "1e300"}, 422, "price_bin_size"),
        ({"leverage": "7"}, 422, "leverage"),  # not a modelled tier
        ({"leverage": "0"}, 422, "leverage"),
    ],
)
def test_bad_parameters_get_a_4xx_naming_them(api, params, status, parameter):
    query = {
        "symbol": SYMBOL,
        "start_time": "2025-12-01T12:00:00",
        "end_time": "2025-12-01T13:00:00",
        **params,
    }
    response = api.get("/liquidations/heatmap-timeseries", params=query)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if status == 422:
        assert [error["loc"] for error in detail] == [["query", parameter]]  # once, only it
    else:
        assert detail.startswith(f"{parameter}:")


def test_map_is_the_sql_curve_at_the_last_snapshot_before_time(api, database, info):
    params = {"symbol": SYMBOL, "time": "2025-12-02T20:02:00Z", "leverage": 25}
    close = api.get("/liquidations/map", params=params).json()["price"]
    below = close * 0.95  # 25x longs sit about 4 % under their entry
    response = api.get("/liquidations/map", params={**params, "price": below})
    assert response.status_code == 200, response.text
    body = response.json()
    snapshot = datetime(2025, 12, 2, 20, 0)
    assert body["timestamp"] == snapshot.isoformat() + "Z"
    with warehouse.connect(database, read_only=True) as conn:
        curve = queries.liquidation_map_rows(
            conn, SYMBOL, snapshot, queries.PriceBins(info.bucket_size), leverage=25
        )
        assert body["price"] == queries.close_price(conn, SYMBOL, snapshot)
    for side in ("long", "short"):
        expected = curve[curve["side"] == side]
        got = pd.DataFrame(body[side])
        np.testing.assert_allclose(got["cumulative_usd"], expected["cumulative_usd"])
        np.testing.assert_allclose(got["reach_price"], expected["reach_price"])
        assert body[f"total_{side}_usd"] == pytest.approx(expected["active_usd"].sum())
    longs = curve[(curve["side"] == "long") & (curve["price"] >= below)]["active_usd"].sum()
    shorts = curve[(curve["side"] == "short") & (curve["reach_price"] <= below)]["active_usd"].sum()
    assert longs > 0
    assert body["if_reached"] == {
        "price": below,
        "long_usd": pytest.approx(longs),
        "short_usd": pytest.approx(shorts),
    }


def test_map_errors(api):
    before = api.get("/liquidations/map", params={"symbol": SYMBOL, "time": "2025-11-30T00:00"})
    assert before.status_code == 404
    assert before.json()["detail"].startswith("time:")
    bad_bin = api.get("/liquidations/map", params={"symbol": SYMBOL, "price_bin_size": 3})
    assert bad_bin.status_code == 422


def test_page_is_served_as_html(api):
    response = api.get("/heatmap", params={"symbol": SYMBOL})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    title = (
        f"{SYNTHETIC_LABEL} · {SYMBOL} · modelled liquidation heatmap up to 2025-12-05 00:00 UTC"
    )
    assert f"<title>{title}</title>" in response.text
    earlier = api.get("/heatmap", params={"symbol": SYMBOL, "date": "2025-12-01"})
    assert "up to 2025-12-02 00:00 UTC" in earlier.text
    outside = api.get("/heatmap", params={"symbol": SYMBOL, "date": "2025-12-09"})
    assert outside.status_code == 404
    assert outside.json()["detail"].startswith("date:")


_HOLD_WRITE_LOCK = textwrap.dedent(
    """
    import sys, time, duckdb
    conn = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.readline()
    conn.close()
    """
)


def test_writer_holding_the_file_gives_503_then_recovers(api, database):
    writer = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        response = api.get("/health")
        assert response.status_code == 503
        assert "being written by the pipeline" in response.json()["detail"]
        assert response.headers["retry-after"] == "5"
    finally:
        writer.communicate("\n", timeout=30)
    assert api.get("/health").status_code == 200


# A pipeline write from another process: it reports how long it waited for the file.
_TIMED_WRITER = textwrap.dedent(
    """
    import sys, time
    from liqheat_pipeline.lib import warehouse
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.monotonic()
    with warehouse.connect(sys.argv[1], lock_wait_seconds=float(sys.argv[2])) as conn:
        waited = time.monotonic() - started
        conn.execute("BEGIN TRANSACTION")
        conn.execute("CREATE TABLE writer_was_here AS SELECT 1 AS x")
        conn.execute("ROLLBACK")
    print(f"{waited:.3f}", flush=True)
    """
)
HAMMERING_CLIENTS = 4
WRITER_PATIENCE_SECONDS = 15.0
# The longest request in flight when the writer arrives, plus its backoff between attempts.
WRITER_WAIT_BOUND_SECONDS = 5.0


def test_concurrent_clients_do_not_starve_a_writer_process(api, database):
    """Overlapping requests kept the file attached without a gap: the writer waited forever.
    Readers now back off while a writer waits, so it gets the file within a bounded time, and
    the clients meanwhile get 503s with Retry-After, never a server error."""
    writer = subprocess.Popen(
        [sys.executable, "-c", _TIMED_WRITER, str(database), str(WRITER_PATIENCE_SECONDS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "ready"
    stop = threading.Event()
    responses: list[tuple[int, str | None]] = []

    def hammer() -> None:
        with client(str(api.base_url)) as http:
            while not stop.is_set():
                response = http.get(
                    "/liquidations/heatmap-timeseries",
                    params={
                        "symbol": SYMBOL,
                        "start_time": "2025-12-01T00:00:00",
                        "end_time": "2025-12-02T00:00:00",
                    },
                )
                responses.append((response.status_code, response.headers.get("retry-after")))

    clients = [threading.Thread(target=hammer) for _ in range(HAMMERING_CLIENTS)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(1.0)  # the clients' requests overlap before the writer asks for the file
        out, err = writer.communicate("\n", timeout=WRITER_PATIENCE_SECONDS + 30)
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    assert writer.returncode == 0, err
    waited = float(out.strip())
    print(f"writer waited {waited:.2f} s under {HAMMERING_CLIENTS} clients")
    assert waited < WRITER_WAIT_BOUND_SECONDS
    statuses = {status for status, _ in responses}
    assert 200 in statuses and statuses <= {200, 503}
    assert {retry for status, retry in responses if status == 503} <= {"5"}
    assert api.get("/health").status_code == 200


def test_concurrent_requests_share_the_file_and_agree(api):
    params = {"start_time": "2025-12-03T00:00:00", "end_time": "2025-12-03T12:00:00"}
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda _: _timeseries(api, **params), range(24)))
    assert {response.status_code for response in responses} == {200}
    assert len({response.content for response in responses}) == 1


def test_serve_rejects_a_port_out_of_range(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["serve", "--port", "70000"])
    assert exit_info.value.code == 2
    assert "--port 70000: must be at most 65535" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("LOCALHOST", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("liqheat.example.org", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_serving_beyond_loopback_warns_that_there_is_no_authentication(database, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "liqheat_pipeline.cli", "serve", "--host", "0.0.0.0"]
    with (tmp_path / "serve.log").open("w+") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            env={**os.environ, "LIQHEAT_DB": str(database)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_listening(f"http://127.0.0.1:{port}", process, log)
        finally:
            process.terminate()
            process.wait(timeout=10)
        log.seek(0)
        output = log.read()
    assert "warning: --host 0.0.0.0 exposes the API beyond this machine" in output
    assert "no authentication" in output


def _assert_unavailable(response, tmp_path: Path) -> str:
    """A 503 a client can act on, that does not reveal where the server keeps its files."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert str(tmp_path) not in response.text
    return response.json()["detail"]


def test_missing_database_is_a_503_not_a_500(tmp_path):
    with running_server(tmp_path / "absent.duckdb") as base_url, client(base_url) as http:
        detail = _assert_unavailable(http.get("/health"), tmp_path)
    assert "does not exist yet" in detail


# One request per endpoint that reads model output, each reaching other parts of the file.
MODEL_ENDPOINTS = [
    ("/", {}),
    ("/health", {}),
    ("/heatmap", {"symbol": SYMBOL}),
    ("/liquidations/map", {"symbol": SYMBOL}),
    (
        "/liquidations/heatmap-timeseries",
        {"symbol": SYMBOL, "start_time": "2025-12-01T00:00:00", "end_time": "2025-12-01T06:00:00"},
    ),
]
REALIZED = (
    "/liquidations/realized",
    {"symbol": SYMBOL, "start": "2025-12-02", "end": "2025-12-03"},
)


DUCKDB_BLOCK = 262_144


def _flip_a_byte_per_block(data: bytes) -> bytes:
    """Corrupt every block after the first few: DuckDB's checksums reject them as read."""
    damaged = bytearray(data)
    for offset in range(12_288 + 4 * DUCKDB_BLOCK + 1000, len(damaged), DUCKDB_BLOCK):
        damaged[offset] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize(
    ("damage", "error_type"),
    [
        # The first half: the header survives, pages every endpoint needs do not. A fixed length
        # goes stale as the demo file's layout changes (at 3 MB of 3.7 MB, two endpoints answered).
        pytest.param(lambda data: data[: len(data) // 2], "IOException", id="truncated"),
        pytest.param(lambda data: b"not a database\n", "IOException", id="not-duckdb"),
        # DuckDB raises its base class Error for a checksum mismatch.
        pytest.param(_flip_a_byte_per_block, "Error", id="corrupted"),
    ],
)
def test_a_damaged_database_is_a_503_never_a_500(database, tmp_path, damage, error_type):
    damaged = tmp_path / "liqheat.duckdb"
    damaged.write_bytes(damage(database.read_bytes()))
    with running_server(damaged) as base_url, client(base_url) as http:
        details = [
            _assert_unavailable(http.get(path, params=params), tmp_path)
            for path, params in MODEL_ENDPOINTS
        ]
        realized = http.get(REALIZED[0], params=REALIZED[1])
    for detail in details:
        assert detail.startswith(f"database liqheat.duckdb cannot be read ({error_type})")
    # The observed liquidations lie in pages the damage may have spared.
    if realized.status_code != 200:
        _assert_unavailable(realized, tmp_path)


def test_errors_name_the_database_file_but_not_its_directory(tmp_path):
    """An empty DuckDB file (no pipeline output yet) and one held by a writer."""
    empty = tmp_path / "liqheat.duckdb"
    with warehouse.connect(empty):
        pass
    writer = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(empty)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    with running_server(empty) as base_url, client(base_url) as http:
        try:
            assert writer.stdout.readline().strip() == "locked"
            locked = _assert_unavailable(http.get("/health"), tmp_path)
        finally:
            writer.communicate("\n", timeout=30)
        not_built = _assert_unavailable(http.get("/health"), tmp_path)
    assert (
        locked == "database liqheat.duckdb is being written by the pipeline; retry in a few seconds"
    )
    assert not_built.startswith("database liqheat.duckdb has no pipeline output yet")


def test_responses_do_not_depend_on_the_host_time_zone(api, database):
    params = {
        "symbol": SYMBOL,
        "start_time": "2025-12-02T22:00:00",
        "end_time": "2025-12-03T02:00:00",
        "interval": "1h",
    }
    with (
        running_server(database, {"TZ": "America/New_York"}) as base_url,
        client(base_url) as new_york,
    ):
        elsewhere = new_york.get("/liquidations/heatmap-timeseries", params=params).json()
    assert elsewhere == api.get("/liquidations/heatmap-timeseries", params=params).json()
