"""Property tests of the replay on Python-built Aave v3 markets (real ported rules, in-memory path)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.api import run_inputs
from protocols.aave_v3.state import AaveV3State
from tests.backtest.markets import ADAPTER, COLL, DEBT, FROM, T0, inputs, market, scenario

PERFECT = "\n[liquidator]\nreaction_delay_blocks = 0\ngas_units = 0\nmin_profit_usd = 0\n"


@st.composite
def safe_case(draw):  # type: ignore[no-untyped-def]
    lt = draw(st.integers(6000, 9000))
    # bonus such that LT * (1 + bonus) < 1 with room
    max_bonus = int((10**8 // lt - 10_000) * 0.8)
    bonus = 10_000 + draw(st.integers(100, max(100, min(1500, max_bonus))))
    if lt * bonus >= 10**8:
        bonus = 10_000 + 100
    margin = Fraction(10**4, lt) - Fraction(bonus, 10**4)   # 1/LT - (1 + bonus)
    step_max = float(margin * Fraction(lt, 10**4)) * 0.9    # relative step that keeps C/D > 1 + bonus
    price0 = draw(st.integers(1_000 * 10**8, 4_000 * 10**8))
    n_users = draw(st.integers(1, 4))
    positions = []
    for _ in range(n_users):
        coll = draw(st.integers(1, 50)) * 10**18
        hf = draw(st.floats(1.01, 1.5))
        debt_usd = int(coll * price0 // 10**18 * lt // 10_000 / hf)  # base units (1e8)
        positions.append((coll, max(10**6, debt_usd // 100)))       # 6-decimals debt
    steps = draw(st.lists(st.floats(-step_max, step_max / 4), min_size=5, max_size=40))
    path = [price0]
    for s in steps:
        path.append(max(10**8, int(path[-1] * (1 + s))))
    fee = draw(st.sampled_from([0, 1000]))
    return lt, bonus, fee, positions, path


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(safe_case())
def test_steps_below_the_safety_margin_leave_no_bad_debt(case) -> None:  # type: ignore[no-untyped-def]
    """Single collateral, single debt, every price step smaller than the safety margin
    1/LT - (1 + bonus), a zero-delay, unlimited, gas-free liquidator: no bad debt ever."""
    lt, bonus, fee, positions, path = case
    book = market(lt, bonus, positions, fee=fee)
    res = run_inputs(scenario(extra=PERFECT, to_block=FROM + len(path) + 1), inputs(book, path))
    bd = res.summary["bad_debt"]
    assert bd["peak_unrealized_oracle_value"] == 0, (bd, res.summary["liquidations"])
    assert bd["end_unrealized_oracle_value"] == 0
    # and the check is not vacuous when the price fell far enough to make accounts liquidatable
    for u in book.users:
        end = T0 + 12 * (len(path) + 2)
        h = ADAPTER.account(res.output.final_state, u, {COLL: path[-1], DEBT: 10**8}, end)
        assert h.collateral_value >= h.debt_value


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(6000, 9000), st.integers(10_100, 11_500), st.integers(0, 3 * 10**26),
       st.lists(st.integers(-30, 10), min_size=3, max_size=25), st.integers(1, 4), st.integers(0, 3))
def test_accounting_per_reserve(lt: int, bonus: int, rate: int, moves: list[int], n: int, delay: int) -> None:
    """Per debt reserve: initial debt + accrued interest == repaid + remaining + written off
    (Aave v3.0: no write-off). Interest accrued is measured per segment between liquidations
    from the scaled balances and the protocol's indices; a liquidation's scaled burn rounds
    (rayDiv half-up), which the identity must absorb within 1 wei per liquidation, and exactly
    when the index is RAY (rate 0)."""
    price0 = 2_000 * 10**8
    positions = [(10**18 * (k + 1), (k + 1) * 2_000 * 10**6 * lt // 10_000 * 95 // 100) for k in range(n)]
    book = market(lt, bonus, positions, borrow_rate=rate)
    initial = {u: ADAPTER.positions(book.state, u, 1_700_000_000) for u in book.users}
    init_debt = sum(p.debt for ps in initial.values() for p in ps if p.asset == DEBT)
    path = [price0]
    for m in moves:
        path.append(max(10**8, path[-1] * (100 + m) // 100))
    extra = PERFECT.replace("reaction_delay_blocks = 0", f"reaction_delay_blocks = {delay}")
    sc = scenario(extra=extra, to_block=FROM + len(path) + 1)
    inp = inputs(book, path)
    end_ts = inp.blocks.timestamp(inp.to_block)
    b = book.state
    start_state = AaveV3State(rules=b.rules, pool=b.pool, reserves=dict(b.reserves),
                              reserves_list=dict(b.reserves_list), reserves_count=b.reserves_count,
                              users=dict(b.users), tokens=dict(b.tokens))
    res = run_inputs(sc, inp)
    liqs = [x for x in res.output.liquidations if x.committed]
    repaid = sum(x.debt_repaid for x in liqs if x.debt_asset == DEBT)
    written_off = 0  # Aave v3.0 writes nothing off: debt left without collateral stays in the account
    assert res.summary["bad_debt"]["realized_value"] == 0
    final = res.output.final_state
    remaining = sum(p.debt for u in book.users for p in ADAPTER.positions(final, u, end_ts)
                    if p.asset == DEBT)
    # interest, independently: replay the committed outcomes on a copy, measuring debt growth
    interest = 0
    st_ = start_state
    last_ts = {u: 1_700_000_000 for u in book.users}
    debt_now = {u: next((p.debt for p in initial[u] if p.asset == DEBT), 0) for u in book.users}
    rounding = 0
    for x in liqs:
        before = next((p.debt for p in ADAPTER.positions(st_, x.user, x.timestamp) if p.asset == DEBT), 0)
        interest += before - debt_now[x.user]
        assert x.outcome is not None
        ADAPTER.commit(st_, x.outcome)
        after = next((p.debt for p in ADAPTER.positions(st_, x.user, x.timestamp) if p.asset == DEBT), 0)
        rounding += before - x.debt_repaid - after
        debt_now[x.user], last_ts[x.user] = after, x.timestamp
    for u in book.users:
        end = next((p.debt for p in ADAPTER.positions(st_, u, end_ts) if p.asset == DEBT), 0)
        interest += end - debt_now[u]
    assert init_debt + interest == repaid + remaining + written_off + rounding
    assert abs(rounding) <= len(liqs)
    if rate == 0:
        assert rounding == 0 and interest == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(-25, 10), min_size=3, max_size=20), st.integers(0, 3), st.integers(7000, 9000))
def test_reference_as_oracle_leaves_zero_lag_attributable_bad_debt(moves: list[int], delay: int,
                                                                    lt: int) -> None:
    """Lag-attributable bad debt := bad debt with the protocol oracle − bad debt with the reference
    price in place of the oracle, both counterfactual. When the oracle's rounds *are* the
    reference path (a lag-free oracle), it is exactly 0, and every liquidation is the same."""
    refs = [Fraction(2_000)]
    for m in moves:
        refs.append(refs[-1] * (100 + m) / 100)
    path = [int(r * 10**8) for r in refs]
    positions = [(10**18 * (k + 1), (k + 1) * 2_000 * 10**6 * lt // 10_000 * 97 // 100) for k in range(3)]
    extra = PERFECT.replace("reaction_delay_blocks = 0", f"reaction_delay_blocks = {delay}")
    to = FROM + len(path) + 1
    a = run_inputs(scenario(extra=extra, to_block=to, reference=True, oracle="protocol"),
                   inputs(market(lt, 10_800, positions), path, refs=refs, ref_start=refs[0]))
    b = run_inputs(scenario(extra=extra, to_block=to, reference=True, oracle="reference"),
                   inputs(market(lt, 10_800, positions), path, refs=refs, ref_start=refs[0]))
    ba, bb = a.summary["bad_debt"], b.summary["bad_debt"]
    assert ba["end_unrealized_oracle_value"] - bb["end_unrealized_oracle_value"] == 0
    assert ba["peak_unrealized_oracle_value"] == bb["peak_unrealized_oracle_value"]
    # the reference-price view of the protocol-oracle run is the same path: no hidden insolvency
    assert ba["peak_unrealized_reference_value"] == ba["peak_unrealized_oracle_value"]
    def key(r):  # type: ignore[no-untyped-def]
        return [(x.block_number, x.user, x.debt_repaid, x.collateral_seized) for x in r.output.liquidations]
    assert key(a) == key(b)
