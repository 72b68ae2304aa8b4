"""The SQL audits on a small hand-made history whose correctness follows from the model rules.

Two days, three candles on the first: a 20x long opened at 00:00 (entry 100, generic bracket
MMR 0.4 %, cum 0, N_rep 10,000 → LP 95.381…) is not crossed by the 00:05 low of 96 and is
consumed by the 00:10 low of 94; a 10x short (LP 109.56…) stays active into day two.
Open interest rises by 15 BTC in the first candle (the 1,500 USD opened at price 100) and
falls by 10 BTC in the third, exactly the consumed long (so `oi_share_net` closes nothing).
Every corruption below breaks one rule and must fail the audit that guards it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from liqheat_pipeline.lib import warehouse
from liqheat_pipeline.lib.engine.state import LEVEL_COLUMNS
from liqheat_pipeline.lib.model import audit, store

SYMBOL = "TESTUSDT"
DAY_1, DAY_2 = date(2025, 12, 1), date(2025, 12, 2)
T0, T1, T2 = (datetime(2025, 12, 1, 0, minute) for minute in (0, 5, 10))
T3 = datetime(2025, 12, 2, 0, 0)
MMR = 0.004
LONG_LP = 100 * (1 - 1 / 20) / (1 - MMR)
SHORT_LP = 100 * (1 + 1 / 10) / (1 + MMR)
# model.md's id rule: epoch minutes of creation × 1000 + side code × 100 + tier index.
LONG_ID, SHORT_ID = 29_409_120_001, 29_409_120_101
# A valid id (a short of tier 2 opened at 00:00) that no level_openings row has.
UNOPENED_ID = 29_409_120_102
# The short is the one level active at the end of each day.
RUN_METADATA = json.dumps({"active_levels": 1})


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).assign(symbol=SYMBOL)


# Open interest (BTC) at each instant; the candles close at 100.
OPEN_INTEREST = {
    T0: 100.0,
    T1: 115.0,
    T2: 115.0,
    datetime(2025, 12, 1, 0, 15): 105.0,
    T3: 105.0,
    datetime(2025, 12, 2, 0, 5): 105.0,
}
ASSUMPTIONS = {
    "n_rep": 10_000.0,
    "closure_model": "oi_share_net",
    "entry_price": "close",
    "interval_minutes": 5,
}


def _ledger(ts, side, opened=0.0, consumed=0.0, closed=0.0, active=0.0) -> dict:
    oi_after = OPEN_INTEREST[ts + timedelta(minutes=5)] * 100.0
    return dict(
        ts=ts, side=side, opened_usd=opened, consumed_usd=consumed, closed_usd=closed,
        active_usd=active, open_interest_usd=oi_after, coverage=active / oi_after,
        closure_scale=1.0,
    )  # fmt: skip


def _segment(ts, side, bucket, active, consumed=0.0) -> dict:
    """A one-candle snapshot segment (the ledger's closure scale is 1: weight = active)."""
    return dict(
        first_ts=ts, last_ts=ts, side=side, price_bucket=bucket, weight=active,
        consumed_usd=consumed,
    )  # fmt: skip


def _opening(level_id, side, leverage, liq_price, notional, bucket) -> dict:
    return dict(
        level_id=level_id, created_at=T0, side=side, leverage=leverage, tier_leverage=leverage,
        entry_price=100.0, liq_price=liq_price, notional_usd=notional, mmr=MMR,
        maint_amount=0.0, price_bucket=bucket,
    )  # fmt: skip


def _run(day) -> dict:
    return dict(
        day=day, config_hash="abc", assumptions=json.dumps(ASSUMPTIONS),
        bucket_size=1.0, last_candle_time=None, stats="{}", state_metadata=RUN_METADATA,
        computed_at=datetime(2026, 1, 1),
    )  # fmt: skip


def _history() -> dict[str, pd.DataFrame]:
    candle = dict(open=100.0, close=100.0, volume=1.0)
    tables = {
        "candles": _frame(
            [
                {**candle, "open_time": T0, "high": 101.0, "low": 99.0},
                {**candle, "open_time": T1, "high": 100.5, "low": 96.0},
                {**candle, "open_time": T2, "high": 99.0, "low": 94.0},
                {**candle, "open_time": T3, "high": 101.0, "low": 99.0},
            ]
        ),
        "level_openings": _frame(
            [
                _opening(LONG_ID, "long", 20, LONG_LP, 1000.0, 95.0),
                _opening(SHORT_ID, "short", 10, SHORT_LP, 500.0, 109.0),
            ]
        ),
        "level_consumptions": _frame(
            [dict(level_id=LONG_ID, consumed_at=T2, consumed_usd=1000.0, side="long")]
        ),
        "candle_ledger": _frame(
            [
                _ledger(T0, "long", opened=1000.0, active=1000.0),
                _ledger(T0, "short", opened=500.0, active=500.0),
                _ledger(T1, "long", active=1000.0),
                _ledger(T1, "short", active=500.0),
                _ledger(T2, "long", consumed=1000.0),
                _ledger(T2, "short", active=500.0),
                _ledger(T3, "long"),
                _ledger(T3, "short", active=500.0),
            ]
        ),
        "snapshot_segments": _frame(
            [
                _segment(T0, "long", 95.0, 1000.0),
                _segment(T0, "short", 109.0, 500.0),
                _segment(T1, "long", 95.0, 1000.0),
                _segment(T1, "short", 109.0, 500.0),
                _segment(T2, "long", 95.0, 0.0, consumed=1000.0),
                _segment(T2, "short", 109.0, 500.0),
                _segment(T3, "short", 109.0, 500.0),
            ]
        ),
        "open_interest": _frame(
            [{"ts": ts, "open_interest": oi} for ts, oi in OPEN_INTEREST.items()]
        ),
        "model_runs": _frame([_run(DAY_1), _run(DAY_2)]),
    }
    # One leverage per side here, so the by-leverage rows are the snapshot rows plus leverage.
    snapshots = tables["snapshot_segments"]
    tables["snapshot_segments_by_leverage"] = snapshots.assign(
        leverage=snapshots["side"].map({"long": 20, "short": 10})
    )
    return tables


BRACKETS = pd.DataFrame(
    {
        "symbol": ["*", "*"],
        "effective_from": [date(2025, 1, 1), date(2025, 1, 1)],
        "floor": [0.0, 50_000.0],
        "cap": [50_000.0, 1e12],
        "max_leverage": [125, 50],
        "mmr": [MMR, 0.005],
        "maint_amount": [0.0, 50.0],
    }
)


@pytest.fixture
def conn(db_path):
    with warehouse.connect(db_path) as conn:
        warehouse.ensure_schema(conn)
        for table, frame in _history().items():
            columns = ", ".join(frame.columns)
            conn.register("_rows", frame)
            conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM _rows")
            conn.unregister("_rows")
        warehouse.replace_table(conn, "margin_brackets", BRACKETS)
        yield conn


def _window(first: date = DAY_1, last: date = DAY_2) -> audit.AuditWindow:
    return audit.AuditWindow(
        SYMBOL, first, date.fromordinal(last.toordinal() + 1), history_start=DAY_1
    )


def _all_audits(conn, window) -> dict[str, audit.AuditResult]:
    """Every audit, reading the end states from the view; the same audits on the states
    materialized for the window (as the asset checks run them) must agree."""
    from_view = _audits(conn, window)
    materialized = _audits(conn, audit.with_materialized_states(conn, window))
    assert {name: (r.passed, r.counts) for name, r in materialized.items()} == {
        name: (r.passed, r.counts) for name, r in from_view.items()
    }
    return from_view


def _audits(conn, window) -> dict[str, audit.AuditResult]:
    return {
        "not_crossed": audit.active_levels_not_crossed(conn, window),
        "first_crossing": audit.consumed_at_first_crossing(conn, window),
        "ledger": audit.ledger_identity(conn, window),
        "closures": audit.closures_follow_open_interest(conn, window),
        "snapshots": audit.snapshots_match_ledger(conn, window),
        "continuity": audit.continuity_with_previous_day(conn, window),
        "liq_prices": audit.liquidation_prices_match_brackets(conn, window),
        "values": audit.values_valid_and_keys_unique(
            conn, window, tuple(audit.NON_NEGATIVE_COLUMNS)
        ),
    }


@pytest.mark.parametrize(
    "window", [_window(), _window(DAY_1, DAY_1), _window(DAY_2, DAY_2)], ids=str
)
def test_every_audit_passes_on_a_consistent_history(conn, window):
    results = _all_audits(conn, window)
    assert {name: result.passed for name, result in results.items()} == dict.fromkeys(
        results, True
    ), {name: result.offending for name, result in results.items()}
    assert results["first_crossing"].counts["consumptions_checked"] == (window.first_day == DAY_1)
    assert results["liq_prices"].counts["levels_checked"] == (2 if window.first_day == DAY_1 else 0)


CORRUPTIONS = {
    # consumed one candle too early: the 00:05 low of 96 does not reach LP 95.38
    "consumed too early": (
        "UPDATE level_consumptions SET consumed_at = TIMESTAMP '2025-12-01 00:05:00'",
        "first_crossing",
    ),
    # consumed later than the first crossing candle
    "consumed too late": (
        "UPDATE level_consumptions SET consumed_at = TIMESTAMP '2025-12-02 00:00:00'",
        "first_crossing",
    ),
    "active short crossed": (
        "UPDATE candles SET high = 120 WHERE open_time = TIMESTAMP '2025-12-01 00:05:00'",
        "not_crossed",
    ),
    "ledger off by 1 USD": (
        "UPDATE candle_ledger SET active_usd = active_usd + 1 "
        "WHERE side = 'short' AND ts = TIMESTAMP '2025-12-01 00:05:00'",
        "ledger",
    ),
    "closure rule changed without recomputing": (
        "UPDATE model_runs SET assumptions = json_merge_patch(assumptions, "
        '\'{"closure_model": "oi_share"}\')',
        "closures",
    ),
    "closed USD not the share of open interest": (
        "UPDATE candle_ledger SET closed_usd = 1, active_usd = active_usd - 1 "
        "WHERE side = 'short' AND ts = TIMESTAMP '2025-12-01 00:05:00'",
        "closures",
    ),
    "open interest falls but nothing closes": (
        "UPDATE open_interest SET open_interest = 100 WHERE ts = TIMESTAMP '2025-12-02 00:05:00'",
        "closures",
    ),
    "coverage off": (
        "UPDATE candle_ledger SET coverage = coverage * 1.01 "
        "WHERE side = 'short' AND ts = TIMESTAMP '2025-12-01 00:05:00'",
        "closures",
    ),
    "snapshot bucket off by 1 USD": (
        "UPDATE snapshot_segments_by_leverage SET weight = weight - 1 "
        "WHERE side = 'short' AND first_ts = TIMESTAMP '2025-12-02 00:00:00'",
        "snapshots",
    ),
    # The short leaves the state while the ledger keeps it active.
    "level closed out without the ledger closing it": (
        f"INSERT INTO level_closeouts VALUES ('{SYMBOL}', {SHORT_ID}, "
        "TIMESTAMP '2025-12-01 00:05')",
        "continuity",
    ),
    "previous day's state missing": (
        "DELETE FROM model_runs WHERE day = DATE '2025-12-01'",
        "continuity",
    ),
    "liquidation price off": (
        f"UPDATE level_openings SET liq_price = liq_price * 1.0001 WHERE level_id = {LONG_ID}",
        "liq_prices",
    ),
    "leverage above the bracket cap": (
        "UPDATE margin_brackets SET max_leverage = 10 WHERE floor = 0",
        "liq_prices",
    ),
    "negative notional": (
        f"UPDATE level_openings SET notional_usd = -1 WHERE level_id = {SHORT_ID}",
        "values",
    ),
    "NaN active": (
        "UPDATE snapshot_segments SET weight = 'NaN'::DOUBLE "
        "WHERE first_ts = TIMESTAMP '2025-12-01 00:05:00' AND side = 'long'",
        "values",
    ),
    "snapshot segments overlap": (
        "UPDATE snapshot_segments_by_leverage SET last_ts = TIMESTAMP '2025-12-01 00:05:00' "
        "WHERE first_ts = TIMESTAMP '2025-12-01 00:00:00' AND side = 'long'",
        "values",
    ),
    "snapshot segment crosses midnight": (
        "UPDATE snapshot_segments SET last_ts = TIMESTAMP '2025-12-02 00:00:00' "
        "WHERE first_ts = TIMESTAMP '2025-12-01 00:10:00' AND side = 'long'",
        "values",
    ),
    "duplicate ledger key": (
        "INSERT INTO candle_ledger SELECT * FROM candle_ledger "
        "WHERE ts = TIMESTAMP '2025-12-01 00:10:00' AND side = 'long'",
        "values",
    ),
    "level both consumed and closed out": (
        f"INSERT INTO level_closeouts VALUES ('{SYMBOL}', {LONG_ID}, TIMESTAMP '2025-12-01 00:10')",
        "values",
    ),
    "closeout of a level never opened": (
        f"INSERT INTO level_closeouts VALUES ('{SYMBOL}', {UNOPENED_ID}, "
        "TIMESTAMP '2025-12-01 00:05')",
        "values",
    ),
    # Keys are unique per day (each day audited alone); across days, the second consumption is
    # of a level that left the end state the day started from.
    "level consumed twice on different days": (
        "INSERT INTO level_consumptions SELECT symbol, level_id, "
        "TIMESTAMP '2025-12-02 00:00:00', consumed_usd, side FROM level_consumptions",
        "first_crossing",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_each_corruption_fails_its_audit(conn, corruption):
    statement, audit_name = CORRUPTIONS[corruption]
    conn.execute(statement)
    result = _all_audits(conn, _window())[audit_name]
    assert not result.passed
    assert result.counts["failures"] >= 1
    assert len(result.offending) >= 1
    assert result.description.startswith("FAILED")


def test_a_missing_ledger_day_breaks_the_identity_across_the_boundary(conn):
    conn.execute("DELETE FROM candle_ledger WHERE ts < TIMESTAMP '2025-12-02 00:00:00'")
    result = audit.ledger_identity(conn, _window(DAY_2, DAY_2))
    assert not result.passed
    # The first day of the history starts from zero by definition.
    conn.execute("DELETE FROM candle_ledger")
    assert audit.ledger_identity(conn, _window(DAY_1, DAY_1)).counts["failures"] == 3


@pytest.mark.parametrize(
    "statement",
    [
        # A table dated after the levels' day: days before a symbol's first table use it.
        "UPDATE margin_brackets SET effective_from = DATE '2026-06-01'",
        # N_rep exactly on a cap belongs to the lower bracket (floor < N <= cap).
        "UPDATE model_runs SET assumptions = '{\"n_rep\": 50000.0}'",
    ],
)
def test_bracket_selection_follows_the_bracket_rules(conn, statement):
    conn.execute(statement)
    assert audit.liquidation_prices_match_brackets(conn, _window()).passed


def _liquidation_price_from_margin_balance(side, entry, leverage, mmr, cum, notional):
    """Solve wallet + PnL = maintenance margin for the price (an oracle independent of the
    audit's closed form): N/L + s*Q*(P - entry) = Q*P*MMR - cum with Q = N/entry."""
    sign = 1 if side == "long" else -1
    quantity = notional / entry
    return (notional / leverage - sign * quantity * entry + cum) / (
        quantity * mmr - sign * quantity
    )


def test_liquidation_prices_with_a_maintenance_amount(conn):
    # N_rep 100,000 sits in the second generic bracket: MMR 0.5 %, cum 50.
    conn.execute("UPDATE model_runs SET assumptions = '{\"n_rep\": 100000.0}'")
    for level_id, side, leverage in ((LONG_ID, "long", 20), (SHORT_ID, "short", 10)):
        price = _liquidation_price_from_margin_balance(side, 100.0, leverage, 0.005, 50.0, 1e5)
        conn.execute(
            "UPDATE level_openings SET liq_price = ?, mmr = 0.005, maint_amount = 50 "
            "WHERE level_id = ?",
            [price, level_id],
        )
    assert audit.liquidation_prices_match_brackets(conn, _window()).passed
    conn.execute(f"UPDATE level_openings SET liq_price = {LONG_LP} WHERE level_id = {LONG_ID}")
    assert not audit.liquidation_prices_match_brackets(conn, _window()).passed


def _failed_days(conn) -> set[tuple[str, date]]:
    """(audit, day) of every audit failing when each day is audited alone, as the checks do."""
    return {
        (name, day)
        for day in (DAY_1, DAY_2)
        for name, result in _all_audits(conn, _window(day, day)).items()
        if not result.passed
    }


def test_each_day_passes_alone_and_the_window_is_the_union_of_its_days(conn):
    assert _failed_days(conn) == set()
    conn.execute("UPDATE level_consumptions SET consumed_at = TIMESTAMP '2025-12-02 00:00:00'")
    whole = audit.consumed_at_first_crossing(conn, _window())
    days = [audit.consumed_at_first_crossing(conn, _window(day, day)) for day in (DAY_1, DAY_2)]
    assert (
        whole.counts
        == {key: sum(day.counts[key] for day in days) for key in whole.counts}
        == {"consumptions_checked": 1, "failures": 2}
    )


# Corruptions of the stored rows across the day boundary: each must fail (audit, day) when
# every day is audited alone from its own rows and the previous day's end state.
INDUCTIVE_CORRUPTIONS = {
    # Without its consumption the long crossed at 00:10 stays in day 1's end state.
    "consumption of a crossed level lost": (
        "DELETE FROM level_consumptions",
        ("not_crossed", DAY_1),
    ),
    # Day 1's end state lacks the short, while day 1's ledger still holds it.
    "level closed out on the previous day without the ledger": (
        f"INSERT INTO level_closeouts VALUES ('{SYMBOL}', {SHORT_ID}, "
        "TIMESTAMP '2025-12-01 00:10')",
        ("continuity", DAY_1),
    ),
    # A carried level's price is its opening's, the same row for both days' states: moved
    # where no price reaches it, it no longer follows from the entry and the bracket.
    "carried level's opening price changed": (
        f"UPDATE level_openings SET liq_price = 1e6 WHERE level_id = {SHORT_ID}",
        ("liq_prices", DAY_1),
    ),
    # Moved to the next day: day 1 leaves its crossed long unconsumed, day 2 consumes a level
    # it neither started with nor opened.
    "consumption moved to the next day (crossing day)": (
        "UPDATE level_consumptions SET consumed_at = TIMESTAMP '2025-12-02 00:00:00'",
        ("first_crossing", DAY_1),
    ),
    "consumption moved to the next day (consuming day)": (
        "UPDATE level_consumptions SET consumed_at = TIMESTAMP '2025-12-02 00:00:00'",
        ("first_crossing", DAY_2),
    ),
    # Day 2's candle crosses the carried short, which leaves the state closed out, not consumed.
    "crossing on the day not recorded": (
        "UPDATE candles SET high = 120 WHERE open_time = TIMESTAMP '2025-12-02 00:00:00';"
        f"INSERT INTO level_closeouts VALUES ('{SYMBOL}', {SHORT_ID}, "
        "TIMESTAMP '2025-12-02 00:00')",
        ("first_crossing", DAY_2),
    ),
    "level consumed again on a later day": (
        "INSERT INTO level_consumptions SELECT symbol, level_id, "
        "TIMESTAMP '2025-12-02 00:00:00', consumed_usd, side FROM level_consumptions",
        ("first_crossing", DAY_2),
    ),
    # The same level id opened again on day 2: ids encode their creation minute.
    "level opened again on a later day": (
        "INSERT INTO level_openings SELECT * REPLACE (TIMESTAMP '2025-12-02 00:00:00' AS "
        f"created_at) FROM level_openings WHERE level_id = {SHORT_ID}",
        ("values", DAY_2),
    ),
}


def _assert_same_rows(first: pd.DataFrame, second: pd.DataFrame) -> None:
    if first.empty and second.empty:  # no rows to show (the columns of nothing may differ)
        return
    pd.testing.assert_frame_equal(
        first.reset_index(drop=True), second.reset_index(drop=True), check_dtype=False
    )


@pytest.mark.parametrize(
    "corruption", [None, *CORRUPTIONS, *INDUCTIVE_CORRUPTIONS, "ledger day missing"]
)
def test_each_day_of_a_window_audit_is_that_day_audited_alone(conn, corruption):
    """What the asset checks report per day (one audit over a week, ``by_day``) equals auditing
    each day on its own, findings, counts and offending rows alike."""
    statements = {
        **{name: statement for name, (statement, _) in CORRUPTIONS.items()},
        **{name: statement for name, (statement, _) in INDUCTIVE_CORRUPTIONS.items()},
        "ledger day missing": f"DELETE FROM candle_ledger WHERE ts < TIMESTAMP '{DAY_2}'",
    }
    if corruption is not None:
        conn.execute(statements[corruption])
    window = audit.with_materialized_states(conn, _window())
    whole = _audits(conn, window)
    for day in (DAY_1, DAY_2):
        alone = _audits(conn, audit.with_materialized_states(conn, _window(day, day)))
        for name, result in alone.items():
            of_day = whole[name].by_day[day]
            assert (of_day.passed, of_day.counts, of_day.description) == (
                result.passed,
                result.counts,
                result.description,
            ), (name, day)
            _assert_same_rows(of_day.offending, result.offending)
    if corruption is not None:
        assert not all(result.passed for result in whole.values())


@pytest.mark.parametrize("corruption", list(INDUCTIVE_CORRUPTIONS))
def test_each_state_corruption_fails_a_day_audited_alone(conn, corruption):
    statements, failure = INDUCTIVE_CORRUPTIONS[corruption]
    conn.execute(statements)
    assert failure in _failed_days(conn)


def test_a_crossed_level_closed_out_before_its_crossing_is_not_consumed(conn):
    # Day 2's candle crosses the carried short, which left the state unconsumed: allowed only
    # if its remaining share (500 / 500, no closure before the candle) is below the dust share.
    conn.execute("UPDATE candles SET high = 120 WHERE open_time = TIMESTAMP '2025-12-02 00:00:00'")
    conn.execute(
        f"INSERT INTO level_closeouts VALUES ('{SYMBOL}', {SHORT_ID}, TIMESTAMP '2025-12-02 00:00')"
    )
    for dust_share, passed in ((0.5, False), (1.5, True)):
        conn.execute(
            "UPDATE model_runs SET assumptions = json_merge_patch(assumptions, ?)",
            [json.dumps({"dust_share": dust_share})],
        )
        assert audit.consumed_at_first_crossing(conn, _window(DAY_2, DAY_2)).passed is passed


def test_load_state_rebuilds_the_levels_from_their_openings(conn):
    stored = store.load_state(conn, SYMBOL, DAY_2)
    assert list(stored.levels.columns) == list(LEVEL_COLUMNS)
    assert stored.levels.to_dict("records") == [
        dict(
            level_id=SHORT_ID, created_at=pd.Timestamp(T0), side="short", leverage=10,
            tier_index=1, entry_price=100.0, liq_price=SHORT_LP, price_bucket=109.0,
            notional_usd=500.0, remaining_usd=500.0,
        )
    ]  # fmt: skip


def test_rows_that_do_not_rebuild_the_announced_state_fail_load_state_and_the_audit(conn):
    # Without its opening the short is not in the rebuilt state; its run record announces it.
    conn.execute(f"DELETE FROM level_openings WHERE level_id = {SHORT_ID}")
    message = rf"{SYMBOL}: .* end of {DAY_2}: 0 levels are active, its run record announces 1"
    with pytest.raises(store.StateCorruptionError, match=message):
        store.load_state(conn, SYMBOL, DAY_2)
    assert not audit.continuity_with_previous_day(conn, _window(DAY_2, DAY_2)).passed


def test_a_missing_first_day_fails_load_state_instead_of_starting_empty(conn):
    conn.execute("DELETE FROM model_runs WHERE day = DATE '2025-12-01'")
    assert store.load_state(conn, SYMBOL, DAY_1) is None
    with pytest.raises(store.StateCorruptionError, match="0 levels are active"):
        store.load_state(conn, SYMBOL, DAY_2)
