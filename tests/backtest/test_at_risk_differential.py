"""Seeded randomized differential of the at-risk index (:class:`backtest.ledger.Ledger`) against
the naive replay that evaluates every account with debt at every price update (``naive=True``).

Each seed builds a small market (Aave v3 or v2, 3-5 reserves of 6, 8 and 18 decimals, stablecoins
and volatile assets, reserves with threshold 0, e-mode categories with and without a price
source, interest up to 200 %/yr, an account at HF == 1 exactly, accounts near HF 1 with several
collaterals), a price path (random walks, crashes, a few-bps creep, debt prices rising under flat
collateral, collateral and debt moving in the same block, republished identical answers, gaps of
days to months where only interest moves) and a scenario (counterfactual or historical, oracle
delays, reserve / e-mode overrides, close factor, shocks, a reference path with the
reference-tracking metrics, liquidator delay / capacity / repeat), then checks:

* with interest: at the end of every visited block, no account the index left alone is
  liquidatable (oracle, and reference when tracked) while its last evaluation said it was not;
* without interest: every bt table but bt.runs, and the summary, equal the naive replay's
  (bt.hidden_insolvency compared as per-account totals, see :func:`_tables`).

With interest the tables are *not* equal, by design of the index (bench/README.md, abde67a): a
table row is written when an account is evaluated, and the two replays evaluate at different
blocks. The index re-evaluates an under-water account only when one of its own prices moves
(the naive replay at every move: bad_debt_accounts / bad_debt_blocks / socialization rows
re-sample its interest there), and it re-evaluates an account whose interest bound expired at
any visited block (the naive replay only at price moves: an earlier liquidatable_since, so
liquidations' liquidatable_since_block and simulated delays differ). Two sampling effects remain
without interest, on seeds outside the ranges run here: bt.socialization / bt.loss_bearers write a
reserve's row when an evaluation touching it sees its (U, D) change, so a healthy account that the
naive replay re-evaluates after a small move of its debt's price adds a row (seed 613); and the
liquidations summary's quotes_reverted counts the naive replay's quotes of under-water accounts
with nothing to seize at every price move (seed 673). Liquidations themselves are equal there."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest

from backtest.api import RunResult, run_inputs
from backtest.clock import Blocks
from backtest.engine import ReplayInputs
from backtest.oracle import RefPoint, Round
from backtest.scenario import parse_scenario
from protocols.fixed_point import RAY

T0 = 1_700_000_000
FROM = 1_000
CHAIN = 31337
POOL = "0x" + "99" * 20
TREASURY = "0x" + "77" * 20
EMODE_SOURCE = "0x" + "ee" * 20  # a v3.0 e-mode category's price source (its own price key)
FEED_E = "0x" + "fe" * 20


def _addr(tag: int, i: int) -> str:
    return "0x" + f"{tag:02x}" * 19 + f"{i:02x}"


@dataclass(frozen=True)
class Asset:
    addr: str
    feed: str
    decimals: int
    usd: Fraction  # starting price in USD
    stable: bool
    lt: int
    bonus: int


@dataclass
class Market:
    protocol: str
    assets: list[Asset]
    state: Any
    users: list[str]
    feed_keys: dict[str, tuple[str, ...]]
    feed_decimals: int
    price0: dict[str, int]  # feed -> answer at the window start
    emode: bool


UNIVERSE = [  # (decimals, usd, stable)
    (6, Fraction(1), True),       # USDC-like
    (18, Fraction(2000), False),  # WETH-like
    (8, Fraction(30000), False),  # WBTC-like
    (18, Fraction(1), True),      # DAI-like
    (18, Fraction(1, 2), False),  # a cheap volatile token
]


def _answer(m_protocol: str, usd: Fraction) -> int:
    if m_protocol == "aave_v3":
        return max(1, int(usd * 10**8))
    return max(1, int(usd / 2000 * 10**18))  # Aave v2: X/ETH, ETH at $2,000, 18 decimals


def _value(protocol: str, amount: int, dec: int, answer: int) -> int:
    return int(amount * answer // 10**dec)


def build_market(rng: random.Random, protocol: str) -> Market:
    n = rng.randint(3, 5)
    picks = [0, 1] + rng.sample(range(2, len(UNIVERSE)), n - 2)
    assets = []
    for i, u in enumerate(picks):
        dec, usd, stable = UNIVERSE[u]
        lt = rng.choice((7500, 8000, 8250, 8500, 8600))
        if i >= 2 and rng.random() < (0.3 if stable else 0.1):
            lt = 0  # listed, not a collateral (its e-mode category's threshold does not apply)
        assets.append(Asset(_addr(0xA0, i), _addr(0xF0, i), dec, usd, stable, lt,
                            rng.choice((10500, 10750, 11000)) if lt else 0))
    feed_dec = 8 if protocol == "aave_v3" else 18
    emode = protocol == "aave_v3" and rng.random() < 0.5
    if protocol == "aave_v3":
        from protocols.aave_v3.configuration import ReserveConfiguration as Cfg3
        from protocols.aave_v3.state import V3_0, V3_2, AaveV3State, EModeCategory
        from protocols.aave_v3.state import ReserveData as Rd3

        rules = V3_2 if rng.random() < 0.3 else V3_0
        st: Any = AaveV3State(rules=rules, pool=POOL)
        for i, a in enumerate(assets):
            cat = 1 if emode and a.stable else 0
            cfg = Cfg3(ltv=max(0, a.lt - 500), liquidation_threshold=a.lt, liquidation_bonus=a.bonus,
                       decimals=a.decimals, active=True, borrowing_enabled=True,
                       liquidation_protocol_fee=rng.choice((0, 1000)), emode_category=cat)
            st.add_reserve(Rd3(
                asset=a.addr, id=i, configuration=cfg, liquidity_index=RAY, variable_borrow_index=RAY,
                current_variable_borrow_rate=rng.choice((0, 5 * 10**25, 3 * 10**26, 2 * 10**27)),
                current_liquidity_rate=0, last_update_timestamp=T0,
                a_token=_addr(0xB0, i), variable_debt_token=_addr(0xC0, i), stable_debt_token=_addr(0xD0, i),
                treasury=TREASURY, a_token_underlying_balance=10**40))
        if emode:
            bitmap = sum(1 << i for i, a in enumerate(assets) if a.stable)
            src = EMODE_SOURCE if rules is V3_0 and rng.random() < 0.5 else "0x" + "00" * 20
            st.emode_categories[1] = EModeCategory(
                ltv=9000, liquidation_threshold=9300, liquidation_bonus=10100, price_source=src,
                collateral_bitmap=bitmap, borrowable_bitmap=bitmap)
    else:
        from protocols.aave_v2 import AaveV2State
        from protocols.aave_v2 import ReserveConfiguration as Cfg2
        from protocols.aave_v2 import ReserveData as Rd2

        st = AaveV2State(pool=POOL)
        for i, a in enumerate(assets):
            cfg2 = Cfg2(ltv=max(0, a.lt - 500), liquidation_threshold=a.lt, liquidation_bonus=a.bonus,
                        decimals=a.decimals, active=True, borrowing_enabled=True)
            st.add_reserve(Rd2(
                asset=a.addr, id=i, configuration=cfg2, liquidity_index=RAY, variable_borrow_index=RAY,
                current_variable_borrow_rate=rng.choice((0, 5 * 10**25, 3 * 10**26, 2 * 10**27)),
                last_update_timestamp=T0, a_token=_addr(0xB0, i), variable_debt_token=_addr(0xC0, i),
                stable_debt_token=_addr(0xD0, i), treasury=TREASURY))
    price0 = {a.feed: _answer(protocol, a.usd) for a in assets}
    feed_keys: dict[str, tuple[str, ...]] = {a.feed: (a.addr,) for a in assets}
    if protocol == "aave_v3" and emode and st.emode_categories[1].price_source == EMODE_SOURCE:
        feed_keys[FEED_E] = (EMODE_SOURCE,)
        price0[FEED_E] = 10**8
    m = Market(protocol, assets, st, [], feed_keys, feed_dec, price0, emode)
    _add_users(rng, m)
    return m


def _add_users(rng: random.Random, m: Market) -> None:
    st = m.state
    v3 = m.protocol == "aave_v3"
    if v3:
        from protocols.aave_v3.state import UserReserve, UserState
    else:
        from protocols.aave_v2.state import UserReserve, UserState  # type: ignore[assignment]
    coll_ok = [i for i, a in enumerate(m.assets) if a.lt]
    totals: dict[str, int] = {}
    n_users = rng.randint(5, 12)
    for k in range(n_users):
        u = _addr(0x11, k + 1)
        kind = rng.random()
        if k == 0:  # many reserves, the threshold-0 ones flagged as collateral too
            colls = list(range(len(m.assets)))
            debts = list(range(len(m.assets)))
        elif kind < 0.3:  # stablecoin debt against volatile collateral
            colls = [i for i in coll_ok if not m.assets[i].stable][:1] or coll_ok[:1]
            debts = [i for i, a in enumerate(m.assets) if a.stable][:1]
        elif kind < 0.45:  # volatile debt against stablecoin collateral
            colls = [i for i in coll_ok if m.assets[i].stable][:1] or coll_ok[:1]
            debts = [1]
        else:
            colls = rng.sample(coll_ok, rng.randint(1, min(3, len(coll_ok))))
            debts = rng.sample(range(len(m.assets)), rng.randint(1, 2))
        emode = 1 if v3 and m.emode and rng.random() < 0.5 else 0
        lt_value = 0
        reserves: dict[str, Any] = {}
        config = 0
        for i in colls:
            a = m.assets[i]
            usd = Fraction(rng.randint(1_000, 50_000))
            amount = int(usd / a.usd * 10**a.decimals)
            lt = a.lt
            if emode and a.stable and a.lt:
                lt = 9300
            by_source = emode and a.stable and EMODE_SOURCE in m.feed_keys.get(FEED_E, ())
            price = m.price0[FEED_E] if by_source else m.price0[a.feed]
            lt_value += _value(m.protocol, amount, a.decimals, price) * lt // 10_000
            reserves[a.addr] = UserReserve(scaled_a_token_balance=amount, a_token_previous_index=RAY) if v3 \
                else UserReserve(scaled_a_token_balance=amount)
            config |= 1 << (2 * i + 1)
        hf = rng.choice((Fraction(95, 100), Fraction(1), Fraction(10001, 10000), Fraction(10002, 10000),
                         Fraction(1001, 1000), Fraction(102, 100),
                         Fraction(105, 100), Fraction(11, 10), Fraction(13, 10), Fraction(3)))
        debt_value = Fraction(lt_value) / hf
        for i in debts:
            a = m.assets[i]
            share = debt_value / len(debts)
            price = m.price0[a.feed]
            amount = int(share * 10**a.decimals / price)
            prev = reserves.get(a.addr)
            if v3:
                fresh = UserReserve(scaled_variable_debt=amount, variable_debt_previous_index=RAY)
                ur = fresh if prev is None else dataclasses.replace(
                    prev, scaled_variable_debt=amount, variable_debt_previous_index=RAY)
            else:
                ur = dataclasses.replace(prev, scaled_variable_debt=amount) if prev else \
                    UserReserve(scaled_variable_debt=amount)
            reserves[a.addr] = ur
            config |= 1 << (2 * i)
            totals[a.addr] = totals.get(a.addr, 0) + amount
        st.users[u] = UserState(configuration=config, emode_category=emode, reserves=reserves) if v3 else \
            UserState(configuration=config, reserves=reserves)
        m.users.append(u)
    if v3:  # an account exactly at HF 1: $20,000 of WETH-like at LT 8000 against 16,000 of the 6-dec stable
        a, s = m.assets[1], m.assets[0]
        if a.lt and m.price0[a.feed] == 2000 * 10**8 and not m.emode:
            u = _addr(0x11, 0x7F)
            lt = a.lt
            v = 20_000 * 10**8
            amount = v * 10**18 // m.price0[a.feed]
            units = v * lt // 10_000 // 100
            st.users[u] = UserState(configuration=(1 << 3) | 1, emode_category=0, reserves={
                a.addr: UserReserve(scaled_a_token_balance=amount, a_token_previous_index=RAY),
                s.addr: UserReserve(scaled_variable_debt=units, variable_debt_previous_index=RAY)})
            totals[s.addr] = totals.get(s.addr, 0) + units
            m.users.append(u)
    for asset, tot in totals.items():
        r = st.reserves[asset]
        st.reserves[asset] = dataclasses.replace(r, variable_debt_scaled_total_supply=tot)


def price_path(rng: random.Random, m: Market, n_blocks: int) -> dict[int, dict[str, int]]:
    """block offset (1..n_blocks) -> feed -> new answer."""
    cur = dict(m.price0)
    out: dict[int, dict[str, int]] = {}
    crash_feed = m.assets[1].feed
    style = rng.choice(("walk", "crash", "debt_up", "same_block", "quiet", "creep"))
    for b in range(1, n_blocks + 1):
        moves: dict[str, int] = {}
        for a in m.assets:
            f = a.feed
            p = cur[f]
            r = rng.random()
            if style == "quiet" and r < 0.9:
                continue
            if style == "creep":  # a few bps a block against the accounts: inside most triggers
                p = p * (10_000 + rng.randint(0, 3) if a.stable else 10_000 - rng.randint(0, 3)) // 10_000
                cur[f] = p = max(1, p)
                moves[f] = p
                continue
            if a.stable:
                if style == "debt_up" and r < 0.4:
                    p = p * rng.randint(1001, 1040) // 1000
                elif r < 0.15:
                    p = p * rng.randint(995, 1005) // 1000
                elif r < 0.25:
                    moves[f] = p  # the same answer again (a heartbeat)
                    continue
                else:
                    continue
            else:
                if style == "debt_up":
                    continue  # collateral flat
                if style == "crash" and f == crash_feed:
                    p = p * rng.randint(900, 1000) // 1000
                elif r < 0.5:
                    p = p * rng.randint(960, 1040) // 1000
                elif r < 0.55:
                    p += rng.choice((-1, 1))  # one unit
                elif r < 0.6:
                    moves[f] = p
                    continue
                else:
                    continue
            p = max(1, p)
            cur[f] = p
            moves[f] = p
        if style == "same_block" and b % 3 == 0:
            for a in m.assets:
                cur[a.feed] = max(1, cur[a.feed] * (1040 if a.stable else 960) // 1000)
                moves[a.feed] = cur[a.feed]
        if FEED_E in cur and rng.random() < 0.2:
            cur[FEED_E] = cur[FEED_E] * rng.randint(990, 1030) // 1000
            moves[FEED_E] = cur[FEED_E]
        if moves:
            out[b] = moves
    return out


def build_inputs(rng: random.Random, m: Market, n_blocks: int, spacing: int, gaps: bool,
                 ref_feeds: Sequence[str]) -> ReplayInputs:
    if m.protocol == "aave_v3":
        from protocols.aave_v3 import AaveV3Adapter
        adapter: Any = AaveV3Adapter()
    else:
        from protocols.aave_v2 import AaveV2Adapter
        adapter = AaveV2Adapter()
    to_block = FROM + n_blocks
    rows = []
    t = T0 - spacing  # the window starts at T0, where the positions were built
    for b in range(FROM - 1, to_block + 1):
        rows.append((b, t, 0, True))
        gap = gaps and rng.random() < 0.15
        t += rng.choice((86_400, 30 * 86_400, 120 * 86_400)) if gap else spacing
    blocks = Blocks(rows)
    path = price_path(rng, m, n_blocks)
    rounds = []
    for off in sorted(path):
        b = FROM + off
        ts = blocks.timestamp(b)
        for li, f in enumerate(sorted(path[off])):
            rounds.append(Round(f, path[off][f], m.feed_decimals, ts, b, li, ts))
    init = {f: Round(f, p, m.feed_decimals, T0 - spacing, FROM - 1, i, T0 - spacing)
            for i, (f, p) in enumerate(sorted(m.price0.items()))}
    refs = []
    init_refs = {}
    for f in ref_feeds:
        pair = f"P{f[-2:]}/X"
        scale = Fraction(1, 10**m.feed_decimals)
        p = Fraction(m.price0[f]) * scale
        init_refs[pair] = RefPoint(pair, T0 - spacing - 1, p, FROM - 1)
        for b in range(FROM, to_block + 1):
            if rng.random() < 0.4:
                p = p * Fraction(rng.randint(950, 1050), 1000)
                refs.append(RefPoint(pair, blocks.timestamp(b), p, b))
    refs.sort(key=lambda r: (r.block_number, r.pair))
    return ReplayInputs(adapter, m.state, CHAIN, FROM, to_block, blocks, m.feed_keys, rounds, init, refs,
                        init_refs)


def build_scenario(rng: random.Random, m: Market, to_block: int, ref_feeds: Sequence[str],
                   mode: str) -> str:
    cur = "usd" if m.protocol == "aave_v3" else "eth"
    lines = ['name = "diff"', f"chain_id = {CHAIN}", f'mode = "{mode}"', f"seed = {rng.randint(0, 99)}",
             "[window]", f"from_block = {FROM}", f"to_block = {to_block}", "[market]",
             f'protocol = "{m.protocol}"', 'source = "m"', "[oracle]"]
    oracle = "protocol"
    if ref_feeds and rng.random() < 0.3:
        oracle = "republish"
    lines.append(f'model = "{oracle}"')
    if oracle == "republish":
        lines += ["deviation_bps = 100", "heartbeat_s = 3600"]
    r = rng.random()
    if r < 0.2:
        lines.append(f"delay_blocks = {rng.randint(1, 3)}")
    elif r < 0.35:
        lines.append(f"delay_s = {rng.choice((12, 30, 100))}")
    lines += ["[liquidator]", f"reaction_delay_blocks = {rng.randint(0, 2)}",
              f"capacity_per_block = {rng.choice((0, 0, 1, 2))}",
              f"repeat_in_block = {'true' if rng.random() < 0.7 else 'false'}",
              f"min_profit_{cur} = {rng.choice((0, 0, 1))}"]
    metrics = ["bad_debt", "liquidations", "socialization", "finality", "spiral"]
    if ref_feeds:
        metrics += ["oracle_lag", "paths"]
    lines += ["[metrics]", "names = [" + ", ".join(f'"{x}"' for x in metrics) + "]"]
    if ref_feeds:
        lines += ["[reference]", "[reference.pairs]"] + [f'"{f}" = "P{f[-2:]}/X"' for f in ref_feeds]
    if mode == "counterfactual":
        if rng.random() < 0.4:
            lines += ["[overrides]", f"close_factor_bps = {rng.choice((5000, 10000))}"]
        if rng.random() < 0.4:
            a = rng.choice([a for a in m.assets if a.lt])
            lines += ["[[overrides.reserve]]", f'asset = "{a.addr}"',
                      f"liquidation_threshold_bps = {rng.choice((6000, 7000, 9000))}",
                      f"liquidation_bonus_bps = {rng.choice((10200, 10800))}"]
        if m.emode and rng.random() < 0.5:
            lines += ["[[overrides.emode]]", "category = 1",
                      f"liquidation_threshold_bps = {rng.choice((8000, 9500))}"]
        shocked = [a.feed for a in m.assets if a.feed not in ref_feeds or oracle == "protocol"]
        if shocked and rng.random() < 0.5:
            f = rng.choice(shocked)
            kind = rng.choice(("scale", "shift", "student_t"))
            if kind == "scale":
                lines += ["[[shock]]", 'kind = "scale"', f"factor = {rng.choice(('0.8', '1.1', '0.95'))}",
                          f"from_ts = {T0 + 24}", f'assets = ["{f}"]']
            elif kind == "shift":
                lines += ["[[shock]]", 'kind = "shift"', f"pct = {rng.choice(('-0.2', '0.05', '-0.5'))}",
                          f"at_ts = {T0 + 36}", f"ramp_s = {rng.choice((0, 60))}", f'assets = ["{f}"]']
            else:
                lines += ["[[shock]]", 'kind = "student_t"', f"from_ts = {T0}", f"to_ts = {T0 + 12 * 30}",
                          "step_s = 12", f'assets = ["{f}"]', "vol = 3.0", "df = 3"]
    return "\n".join(lines) + "\n"


@dataclass
class Case:
    seed: int
    protocol: str
    mode: str
    scenario: str
    inputs: ReplayInputs


def make_case(seed: int) -> Case:
    rng = random.Random(seed)
    protocol = "aave_v3" if rng.random() < 0.65 else "aave_v2"
    m = build_market(rng, protocol)
    n_blocks = rng.randint(15, 45)
    spacing = rng.choice((12, 12, 3600))
    gaps = rng.random() < 0.35
    ref_feeds: list[str] = []
    if rng.random() < 0.4:
        ref_feeds = sorted(rng.sample([a.feed for a in m.assets], rng.randint(1, 2)))
    inp = build_inputs(rng, m, n_blocks, spacing, gaps, ref_feeds)
    mode = "counterfactual" if rng.random() < 0.75 else "historical"
    sc = build_scenario(rng, m, inp.to_block, ref_feeds, mode)
    return Case(seed, protocol, mode, sc, inp)


def run_both(case: Case) -> tuple[RunResult, RunResult]:
    sc = parse_scenario(case.scenario, f"<seed {case.seed}>")
    a = run_inputs(sc, case.inputs, naive=False)
    b = run_inputs(sc, case.inputs, naive=True)
    return a, b


def _tables(res: RunResult) -> dict[str, list[Any]]:
    """Every bt table but bt.runs (it counts the evaluations the index exists to cut), and
    bt.hidden_insolvency as per-account totals: it writes one row per interval between two
    evaluations of the account, so its rows follow how often the account was sampled (the naive
    replay re-evaluates it at every price move, the index when one of its prices moves)."""
    out: dict[str, list[Any]] = {}
    for t, rows in res.output.tables.items():
        if t.name == "runs":
            continue
        if t.fqn == "bt.hidden_insolvency":
            tot: dict[str, list[int]] = {}
            for r in rows:
                acc = tot.setdefault(r[4], [0, 0])
                acc[0] += r[6]
                acc[1] += r[10]
            out[t.fqn] = sorted(tot.items())
        else:
            out[t.fqn] = list(rows)
    return out


def differences(a: RunResult, b: RunResult) -> list[str]:
    ta, tb = _tables(a), _tables(b)
    out = [t for t in ta if ta[t] != tb[t]]
    if a.summary != b.summary:
        out.append("summary")
    return out


def _no_interest(case: Case) -> Case:
    st = case.inputs.state
    for k, r in list(st.reserves.items()):
        st.reserves[k] = dataclasses.replace(r, current_variable_borrow_rate=0)
    return case


def _missed_crossings(case: Case, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, str]]:
    """The indexed replay with a check at the end of every visited block: no account the index
    left alone is liquidatable (at the oracle, and at the reference when the run tracks it) while
    its last evaluation said it was not. (This is what the index must guarantee; the bt tables
    are compared with the naive replay's without interest, below.)"""
    from collections import ChainMap

    from backtest import engine

    misses: list[tuple[int, str, str]] = []
    end = engine.Replay._end

    def checked(self: engine.Replay, b: int) -> None:
        before = dict(self.ledger.evaluated_at)
        end(self, b)
        ts = self.block.timestamp
        for u in sorted(self.adapter.users(self.state)):
            last = self.ledger.evals.get(u)
            if last is None or (self.ledger.evaluated_at.get(u) == ts and before.get(u) != ts):
                continue
            account = self.adapter.account
            if not last.oracle.liquidatable and account(self.state, u, self.prices, ts).liquidatable:
                misses.append((b, u, "oracle"))
            if self.track_reference and last.reference is not None and not last.reference.liquidatable and \
                    account(self.state, u, ChainMap(self.ref_prices, self.prices), ts).liquidatable:
                misses.append((b, u, "reference"))

    monkeypatch.setattr(engine.Replay, "_end", checked)
    run_inputs(parse_scenario(case.scenario, f"<seed {case.seed}>"), case.inputs)
    return misses


def _check(seed: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    case = make_case(seed)
    with monkeypatch.context() as m:
        assert _missed_crossings(case, m) == [], (seed, case.scenario)
    a, b = run_both(_no_interest(make_case(seed)))
    assert differences(a, b) == [], (seed, case.scenario)
    return a.output.record.evaluations, b.output.record.evaluations


@pytest.mark.parametrize("seed", range(16))
def test_the_index_misses_no_crossing_and_writes_the_naive_tables(seed: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With interest: no crossing missed at any visited block. Without interest: every bt table
    (bt.hidden_insolvency as per-account totals) and the summary equal the naive replay's."""
    _check(seed, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(16, 400))
def test_the_index_misses_no_crossing_and_writes_the_naive_tables_many(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    _check(seed, monkeypatch)


def _two_collateral_market(x_amount: int, y_amount: int, debt_units: int, path: Sequence[dict[str, int]], *,
                           borrow_rate: int = 0, spacing_s: int = 12) -> tuple[str, ReplayInputs]:
    """Aave v3.0: one account with two collaterals of different thresholds (X: LT 7500, Y: LT
    8600, both 18 decimals) and a 6-decimal stablecoin debt; ``path[i]``: feed -> answer at block
    ``FROM + i`` (``path[0]``: the prices in force at the start); ``borrow_rate``: the stablecoin's
    variable rate (RAY), blocks ``spacing_s`` seconds apart, ``FROM`` at ``T0``."""
    from protocols.aave_v3 import AaveV3Adapter
    from protocols.aave_v3.configuration import ReserveConfiguration
    from protocols.aave_v3.state import V3_0, AaveV3State, ReserveData, UserReserve, UserState

    st = AaveV3State(rules=V3_0, pool=POOL)
    specs = ((_addr(0xA0, 0), 18, 7500), (_addr(0xA0, 1), 18, 8600), (_addr(0xA0, 2), 6, 0))
    for i, (a, dec, lt) in enumerate(specs):
        st.add_reserve(ReserveData(
            asset=a, id=i, configuration=ReserveConfiguration(
                ltv=max(0, lt - 500), liquidation_threshold=lt, liquidation_bonus=10500 if lt else 0,
                decimals=dec, active=True, borrowing_enabled=True),
            current_variable_borrow_rate=0 if lt else borrow_rate,
            last_update_timestamp=T0, a_token=_addr(0xB0, i), variable_debt_token=_addr(0xC0, i),
            stable_debt_token=_addr(0xD0, i), treasury=TREASURY, a_token_underlying_balance=10**40,
            variable_debt_scaled_total_supply=debt_units if not lt else 0))
    u = _addr(0x11, 1)
    st.users[u] = UserState(configuration=(1 << 1) | (1 << 3) | (1 << 4), reserves={
        specs[0][0]: UserReserve(scaled_a_token_balance=x_amount, a_token_previous_index=RAY),
        specs[1][0]: UserReserve(scaled_a_token_balance=y_amount, a_token_previous_index=RAY),
        specs[2][0]: UserReserve(scaled_variable_debt=debt_units, variable_debt_previous_index=RAY)})
    feeds = {_addr(0xF0, i): (a,) for i, (a, _, _) in enumerate(specs)}
    to_block = FROM + len(path) + 1
    blocks = Blocks.regular(FROM - 1, to_block, T0 - spacing_s, spacing_s)  # the window starts at T0
    t = T0 - spacing_s
    init = {f: Round(f, path[0][f], 8, t, FROM - 1, i, t) for i, f in enumerate(sorted(feeds))}
    rounds = [Round(f, p[f], 8, blocks.timestamp(FROM + i), FROM + i, j, blocks.timestamp(FROM + i))
              for i, p in enumerate(path) if i for j, f in enumerate(sorted(p))]
    return u, ReplayInputs(AaveV3Adapter(), st, CHAIN, FROM, to_block, blocks, feeds, rounds, init)


def test_a_crossing_hidden_by_the_rounding_of_the_average_threshold_is_not_missed() -> None:
    """Aave (v2, v3 before 3.5) computes the health factor from ``collateral x floor(average
    LT)``: the floor of the weighted average costs up to 1 bps of the collateral, a term the
    linear exposures do not have. An account at HF ~1.00023 (slack ~1.9 bps of its collateral)
    whose three prices each moved inside their triggers landed at HF 0.99999 without any trigger
    crossed: the naive replay liquidated it, the indexed one never looked at it (no liquidation,
    no bad debt counted)."""
    fx, fy, fd = _addr(0xF0, 0), _addr(0xF0, 1), _addr(0xF0, 2)
    start = {fx: 293790273245, fy: 7859127434, fd: 10**8}
    moved = {fx: 293778625125, fy: 7852188440, fd: 100003825}
    user, inp = _two_collateral_market(758315905113093851001, 904405130084011852463,
                                       173162144290624 * 10**6 // 10**8, [start, moved, moved])
    sc = parse_scenario(f'name = "t"\nchain_id = {CHAIN}\n[window]\nfrom_block = {FROM}\nto_block = '
                        f'{inp.to_block}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n[metrics]\n'
                        'names = ["bad_debt", "liquidations"]\n', "<test>")
    h0 = inp.adapter.account(inp.state, user, {a: start[f] for f, (a,) in inp.feed_keys.items()}, T0)
    h1 = inp.adapter.account(inp.state, user, {a: moved[f] for f, (a,) in inp.feed_keys.items()}, T0)
    assert not h0.liquidatable and h1.liquidatable  # the crossing is real
    naive = run_inputs(sc, inp, naive=True)
    indexed = run_inputs(sc, inp)
    assert [liq.user for liq in naive.output.liquidations] == [user]
    assert differences(indexed, naive) == []


def test_an_account_at_hf_exactly_one_that_interest_alone_tips_under_is_re_evaluated() -> None:
    """HF == 1 exactly (LT-weighted collateral == debt: slack 0, not liquidatable) made the account
    hot, with no trigger and no interest expiry: re-evaluated only when one of its own prices
    moved. A day of interest tipped it under while only a price it holds nothing of moved: the
    naive replay (every account at every price move) liquidated it, the indexed one never
    re-evaluated it, not even at the window end (only accounts liquidatable at their last
    evaluation are). Aave v2 reaches it more easily: wadDiv rounds half up, so HF is exactly 1
    for a slack up to debt / 2e18 below 0 (a few hundred wei)."""
    fx, fy, fd = _addr(0xF0, 0), _addr(0xF0, 1), _addr(0xF0, 2)
    start = {fx: 2_000 * 10**8, fy: 2_000 * 10**8, fd: 10**8}
    path = [start] + [{**start, fx: (1_900 - 50 * i) * 10**8} for i in range(3)]
    # 10 Y at $2,000 (LT 86 %: $17,200) against 17,200 of the stablecoin; no X at all
    user, inp = _two_collateral_market(0, 10 * 10**18, 17_200 * 10**6, path, borrow_rate=10**26,
                                       spacing_s=86_400)
    sc = parse_scenario(f'name = "t"\nchain_id = {CHAIN}\n[window]\nfrom_block = {FROM}\nto_block = '
                        f'{inp.to_block}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n[metrics]\n'
                        'names = ["bad_debt", "liquidations"]\n', "<test>")
    h0 = inp.adapter.account(inp.state, user, {a: start[f] for f, (a,) in inp.feed_keys.items()}, T0)
    assert h0.health_factor_wad == 10**18 and h0.liquidation_threshold_value == h0.debt_value
    naive = run_inputs(sc, inp, naive=True)
    indexed = run_inputs(sc, inp)
    assert [liq.user for liq in naive.output.liquidations] == [user]
    assert differences(indexed, naive) == []


def test_a_quote_that_decides_nothing_schedules_no_visit() -> None:
    """An observed liquidatable account with nothing to seize (its collateral gone: bad debt) is
    quoted and the liquidator decides nothing; the empty decision list still scheduled the next
    block, which was visited with no input (finality's blocks_visited, and an end-of-block
    evaluation there). The naive replay observes such accounts at every price move, the index only
    when their own prices move, so the two counted different blocks."""
    fx, fy, fd = _addr(0xF0, 0), _addr(0xF0, 1), _addr(0xF0, 2)
    start = {fx: 2_000 * 10**8, fy: 2_000 * 10**8, fd: 10**8}
    user, inp = _two_collateral_market(0, 0, 1_000 * 10**6, [start, {**start, fd: 101_000_000}])
    sc = parse_scenario(f'name = "t"\nchain_id = {CHAIN}\n[window]\nfrom_block = {FROM}\nto_block = '
                        f'{inp.to_block}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n', "<test>")
    for naive in (False, True):
        res = run_inputs(sc, inp, naive=naive)
        assert not res.output.liquidations
        # the window's first block, the price move's, and its last (the under-water account's
        # final evaluation); nothing at FROM + 2
        assert res.summary["finality"]["blocks_visited"] == 3, naive


def test_the_window_end_counts_the_bad_debt_that_interest_alone_created() -> None:
    """A healthy account (HF 1.075) and 120 days of 100 %/yr interest with no input after the
    first blocks: at the window end its debt ($22,219.74) exceeds its collateral ($20,000). Only
    accounts liquidatable at their last evaluation were re-evaluated at the window's last block, so
    both replays reported no bad debt at the end; every account with debt is now."""
    from backtest.clock import Blocks

    fx, fy, fd = _addr(0xF0, 0), _addr(0xF0, 1), _addr(0xF0, 2)
    start = {fx: 2_000 * 10**8, fy: 2_000 * 10**8, fd: 10**8}
    path = [start, {**start, fx: 1_900 * 10**8}]
    user, inp = _two_collateral_market(0, 10 * 10**18, 16_000 * 10**6, path, borrow_rate=10**27,
                                       spacing_s=86_400)
    inp = dataclasses.replace(inp, to_block=FROM + 120,
                              blocks=Blocks.regular(FROM - 1, FROM + 120, T0 - 86_400, 86_400))
    sc = parse_scenario(f'name = "t"\nchain_id = {CHAIN}\n[window]\nfrom_block = {FROM}\nto_block = '
                        f'{inp.to_block}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n[liquidator]\n'
                        'min_profit_usd = 1000000000\n', "<test>")
    end = inp.adapter.account(inp.state, user, {a: path[-1][f] for f, (a,) in inp.feed_keys.items()},
                              inp.blocks.timestamp(inp.to_block))
    assert end.debt_value - end.collateral_value == 221_973_674_800  # $2,219.74 under water
    for naive in (False, True):
        res = run_inputs(sc, inp, naive=naive)
        assert res.summary["bad_debt"]["end_unrealized_oracle_value"] == 221_973_674_800, naive


def test_collateral_of_a_reserve_with_threshold_zero_is_no_exposure_in_emode() -> None:
    """``calculateUserAccountData`` counts a collateral only when the *reserve's* threshold is not
    0, then weights it by the e-mode category's threshold; ``exposures`` tested the category's.
    An e-mode account holding (as collateral) and owing a stablecoin whose reserve threshold is 0
    was given an exposure of -700 to it instead of -10,000 (the supplied 10,000 counted at 93 %):
    the stablecoin rising to $1.70 (HF 0.94) crossed no trigger, the indexed replay never
    re-evaluated the account and the naive one liquidated it."""
    from protocols.aave_v3 import AaveV3Adapter
    from protocols.aave_v3.configuration import ReserveConfiguration
    from protocols.aave_v3.state import V3_0, AaveV3State, EModeCategory, ReserveData, UserReserve, UserState

    st = AaveV3State(rules=V3_0, pool=POOL)
    x, s = _addr(0xA0, 0), _addr(0xA0, 1)
    for i, (a, lt, cat) in enumerate(((x, 8000, 0), (s, 0, 1))):
        st.add_reserve(ReserveData(
            asset=a, id=i, configuration=ReserveConfiguration(
                ltv=7500 if lt else 0, liquidation_threshold=lt, liquidation_bonus=10500 if lt else 0,
                decimals=18, active=True, borrowing_enabled=True, emode_category=cat),
            last_update_timestamp=T0, a_token=_addr(0xB0, i), variable_debt_token=_addr(0xC0, i),
            stable_debt_token=_addr(0xD0, i), treasury=TREASURY, a_token_underlying_balance=10**40,
            variable_debt_scaled_total_supply=10_000 * 10**18 if a == s else 0))
    st.emode_categories[1] = EModeCategory(ltv=9000, liquidation_threshold=9300, liquidation_bonus=10100)
    user = _addr(0x11, 1)
    st.users[user] = UserState(configuration=(1 << 1) | (1 << 2) | (1 << 3), emode_category=1, reserves={
        x: UserReserve(scaled_a_token_balance=10 * 10**18, a_token_previous_index=RAY),
        s: UserReserve(scaled_a_token_balance=10_000 * 10**18, a_token_previous_index=RAY,
                       scaled_variable_debt=10_000 * 10**18, variable_debt_previous_index=RAY)})
    adapter = AaveV3Adapter()
    fx, fs = _addr(0xF0, 0), _addr(0xF0, 1)
    blocks = Blocks.regular(FROM - 1, FROM + 3, T0 - 12)
    inp = ReplayInputs(adapter, st, CHAIN, FROM, FROM + 3, blocks, {fx: (x,), fs: (s,)},
                       [Round(fs, 170_000_000, 8, blocks.timestamp(FROM + 1), FROM + 1, 0,
                              blocks.timestamp(FROM + 1))],
                       {fx: Round(fx, 2_000 * 10**8, 8, T0 - 12, FROM - 1, 0, T0 - 12),
                        fs: Round(fs, 10**8, 8, T0 - 12, FROM - 1, 1, T0 - 12)})
    sc = parse_scenario(f'name = "t"\nchain_id = {CHAIN}\n[window]\nfrom_block = {FROM}\nto_block = '
                        f'{FROM + 3}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n', "<test>")
    naive = run_inputs(sc, inp, naive=True)
    assert [liq.user for liq in naive.output.liquidations][:1] == [user]
    assert differences(run_inputs(sc, inp), naive) == []
    assert adapter.exposures(st, user, T0) == {x: 8.0, s: -10_000.0}


def test_an_account_without_net_exposure_at_hf_one_is_re_evaluated_when_interest_moves_it() -> None:
    """Supplying 10 Y (LT 86 %) and owing 8.6 Y: HF == 1 exactly and no net exposure to any price
    (the adapter gives none, like an adapter without exposures), so the account was hot on every
    key with no interest expiry: re-evaluated only when some price moved. A day of interest took it
    under and no price moved: the next answer (the same price again) found it unevaluated, and
    the liquidator never re-read it. It now expires at the next visited block."""
    fx, fy, fd = _addr(0xF0, 0), _addr(0xF0, 1), _addr(0xF0, 2)
    start = {fx: 2_000 * 10**8, fy: 2_000 * 10**8, fd: 10**8}
    user, inp = _two_collateral_market(0, 10 * 10**18, 0, [start, start, start], spacing_s=86_400)
    st = inp.state
    y = _addr(0xA0, 1)
    st.reserves[y] = dataclasses.replace(st.reserves[y], current_variable_borrow_rate=10**27,
                                         variable_debt_scaled_total_supply=86 * 10**17)
    st.users[user] = dataclasses.replace(st.users[user], configuration=(1 << 2) | (1 << 3), reserves={
        y: dataclasses.replace(st.users[user].reserves[y], scaled_variable_debt=86 * 10**17,
                               variable_debt_previous_index=RAY)})
    assert inp.adapter.exposures(st, user, T0) == {}
    assert inp.adapter.account(st, user, {_addr(0xA0, 1): start[fy]}, T0).health_factor_wad == 10**18
    sc = parse_scenario(f'name = "t"\nchain_id = {CHAIN}\n[window]\nfrom_block = {FROM}\nto_block = '
                        f'{inp.to_block}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n', "<test>")
    res = run_inputs(sc, inp)
    first = [(liq.user, liq.liquidatable_since_block) for liq in res.output.liquidations][:1]
    assert first == [(user, FROM + 1)]
