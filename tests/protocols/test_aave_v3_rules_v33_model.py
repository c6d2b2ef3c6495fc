"""Aave v3.3 / v3.4 / v3.5 ``liquidationCall`` against a second, independent derivation.

No bytecode of these releases is at hand (``test_aave_v3_rules_v33.py`` has hand-worked
vectors), so this module re-derives a liquidation's numbers in plain integer arithmetic, written
separately from ``protocols.aave_v3`` from aave-dao/aave-v3-origin ``LiquidationLogic.sol``,
``GenericLogic.sol``, ``ReserveLogic.sol`` (``updateState``'s cache timestamp check) and
``helpers/TokenMath.sol`` at v3.3.0 (5431379), v3.4.0 (d7a6412) and v3.5.0 (6138e1f), and compares
it with the adapter on the conformance sample markets (random indices, rates, prices, e-mode,
an isolated collateral, time passing): whether the call reverts, the debt repaid, the
collateral and fee seized, every deficit, the user's flags and scaled balances after the call,
and the treasury's scaled aToken gain. Only the interest formulas come from
``protocols.fixed_point`` (``linear_interest_v3``, ``compounded_interest_v3``/``_v34``).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass

from protocols.aave_v3 import V3_3, V3_4, V3_5, AaveV3Adapter, AaveV3State, RuleSet
from protocols.aave_v3.adapter import _sample_market
from protocols.aave_v3.state import Effects
from protocols.fixed_point import compounded_interest_v3, compounded_interest_v34, linear_interest_v3

ADAPTER = AaveV3Adapter()
RAY, WAD, MAX = 10**27, 10**18, 2**256 - 1
LIQUIDATOR = "0x" + "99" * 20
SEEDS = range(60)


def _rmh(a: int, b: int) -> int: return (a * b + RAY // 2) // RAY
def _rdh(a: int, b: int) -> int: return (a * RAY + b // 2) // b
def _rmf(a: int, b: int) -> int: return a * b // RAY
def _rmc(a: int, b: int) -> int: return -(-a * b // RAY)
def _rdf(a: int, b: int) -> int: return a * RAY // b
def _rdc(a: int, b: int) -> int: return -(-a * RAY // b)
def _pm(v: int, p: int) -> int: return (v * p + 5000) // 10000
def _pd(v: int, p: int) -> int: return (v * 10000 + p // 2) // p
def _pdc(v: int, p: int) -> int: return -(-v * 10000 // p)
def _mdc(a: int, b: int, c: int) -> int: return -(-a * b // c)
def _wd(a: int, b: int) -> int: return (a * WAD + b // 2) // b


class _Reverts(Exception):
    pass


@dataclass
class _Expected:
    debt_repaid: int
    collateral: int
    fee: int
    scaled: dict[str, tuple[int, int]]  # asset -> (aToken, variable debt) of the user
    deficits: dict[str, int]
    configuration: int
    treasury_scaled: int


def _derive(state: AaveV3State, user: str, coll: str, debt: str, cover: int, prices: dict[str, int],
            ts: int, rules: RuleSet) -> _Expected:
    v35 = rules.directional_rounding
    compounded: Callable[[int, int, int], int] = compounded_interest_v34 if rules.compounding_v34 \
        else compounded_interest_v3
    res = state.reserves
    li = {a: r.liquidity_index for a, r in res.items()}
    vbi = {a: r.variable_borrow_index for a, r in res.items()}
    last = {a: r.last_update_timestamp for a, r in res.items()}

    def update(a: str, cached: tuple[int, int, int] | None = None) -> None:
        # updateState with a cache (last update, liquidity index, borrow index) taken earlier
        l0, cli, cvbi = cached if cached is not None else (last[a], li[a], vbi[a])
        if l0 == ts:
            return
        r = res[a]
        if r.current_liquidity_rate:
            li[a] = _rmh(linear_interest_v3(r.current_liquidity_rate, l0, ts), cli)
        if r.variable_debt_scaled_total_supply:
            vbi[a] = _rmh(compounded(r.current_variable_borrow_rate, l0, ts), cvbi)
        last[a] = ts

    def income(a: str) -> int:
        if last[a] == ts:
            return li[a]
        return _rmh(linear_interest_v3(res[a].current_liquidity_rate, last[a], ts), li[a])

    def norm_debt(a: str) -> int:
        if last[a] == ts:
            return vbi[a]
        return _rmh(compounded(res[a].current_variable_borrow_rate, last[a], ts), vbi[a])

    coll_cache = (last[coll], li[coll], vbi[coll])  # v3.5 caches the collateral reserve first
    update(debt)
    if v35:
        update(coll, coll_cache)
    u = state.users[user]
    cfg = u.configuration
    cat = state.emode_categories.get(u.emode_category) if u.emode_category else None
    total_coll = total_debt = weighted_lt = 0
    for i in range(state.reserves_count):
        flags = (cfg >> (2 * i)) & 3
        a = state.reserves_list.get(i)
        if not flags or a is None:
            continue
        c, p = res[a].configuration, prices[a]
        ur = u.reserves.get(a)
        if c.liquidation_threshold and flags & 2:
            s = ur.scaled_a_token_balance if ur else 0
            value = (_rmf(s, income(a)) if v35 else _rmh(s, income(a))) * p // 10**c.decimals
            total_coll += value
            in_emode = cat is not None and (cat.collateral_bitmap >> i) & 1
            weighted_lt += value * (cat.liquidation_threshold if cat is not None and in_emode
                                    else c.liquidation_threshold)
        if flags & 1:
            s = ur.scaled_variable_debt if ur else 0
            total_debt += _mdc(_rmc(s, norm_debt(a)), p, 10**c.decimals) if v35 else \
                _rmh(s, norm_debt(a)) * p // 10**c.decimals
    if total_debt == 0:
        hf = MAX
    elif v35:
        hf = _wd(weighted_lt, total_debt) // 10000
    else:
        hf = _wd(_pm(total_coll, weighted_lt // total_coll if total_coll else 0), total_debt)

    cr, dr = res[coll], res[debt]
    scaled = {a: (ur.scaled_a_token_balance, ur.scaled_variable_debt) for a, ur in u.reserves.items()}
    s_c, s_d = scaled.get(coll, (0, 0))[0], scaled.get(debt, (0, 0))[1]
    balance = _rmf(s_c, li[coll]) if v35 else _rmh(s_c, income(coll))
    owed = _rmc(s_d, vbi[debt]) if v35 else _rmh(s_d, vbi[debt])
    ccfg, dcfg = cr.configuration, dr.configuration
    if not (ccfg.active and dcfg.active) or ccfg.paused or dcfg.paused or hf >= WAD \
            or not (cr.liquidation_grace_period_until < ts and dr.liquidation_grace_period_until < ts) \
            or not (ccfg.liquidation_threshold and (cfg >> (2 * cr.id + 1)) & 1) or owed == 0:
        raise _Reverts
    in_emode = cat is not None and (cat.collateral_bitmap >> cr.id) & 1
    bonus = cat.liquidation_bonus if cat is not None and in_emode else ccfg.liquidation_bonus
    pc, pd, uc, ud = prices[coll], prices[debt], 10**ccfg.decimals, 10**dcfg.decimals

    # close factor: the whole reserve debt unless both positions >= $2,000 and HF > 0.95
    max_debt = owed
    owed_base = _mdc(owed, pd, ud) if v35 else owed * pd // ud
    if balance * pc // uc >= 2000 * 10**8 and owed_base >= 2000 * 10**8 and hf > 95 * 10**16:
        half_total = _pm(total_debt, 5000)
        if owed_base > half_total:
            max_debt = half_total * ud // pd
    repaid = min(cover, max_debt)
    seized = _pm(pd * repaid * uc // (pc * ud), bonus)
    if seized > balance:
        seized = balance
        value = pc * seized * ud // (pd * uc)
        repaid = _pdc(value, bonus) if v35 else _pd(value, bonus)
    seized_base = seized * pc // uc
    fee = _pm(seized - _pd(seized, bonus), ccfg.liquidation_protocol_fee) \
        if ccfg.liquidation_protocol_fee else 0
    seized -= fee
    if repaid < owed and seized + fee < balance:
        left_debt = _mdc(owed - repaid, pd, ud) if v35 else (owed - repaid) * pd // ud
        if left_debt < 1000 * 10**8 or (balance - seized - fee) * pc // uc < 1000 * 10**8:
            raise _Reverts  # MUST_NOT_LEAVE_DUST
    if seized + fee == balance:
        cfg &= ~(1 << (2 * cr.id + 1))
    no_collateral_left = total_coll == seized_base
    deficits: dict[str, int] = {}

    def burn_debt(a: str, owed_a: int, repaid_a: int) -> None:
        nonlocal cfg
        s = scaled.get(a, (0, 0))[1]
        if owed_a:
            amount = owed_a if no_collateral_left else repaid_a
            burned = _rdf(amount, vbi[a]) if v35 else _rdh(amount, vbi[a])
            if burned == 0 or burned > s:
                raise _Reverts
            scaled[a] = (scaled.get(a, (0, 0))[0], s - burned)
        if no_collateral_left and owed_a - repaid_a:
            deficits[a] = deficits.get(a, 0) + owed_a - repaid_a
        cleared = scaled.get(a, (0, 0))[1] == 0 if rules.borrow_flag_from_balance else \
            (no_collateral_left or owed_a == repaid_a)
        if cleared:
            cfg &= ~(1 << (2 * res[a].id))

    burn_debt(debt, owed, repaid)
    if not v35:
        update(coll)
    index = li[coll]
    s_c = scaled[coll][0] - (_rdc(seized, index) if v35 else _rdh(seized, index))
    treasury = 0
    if fee:
        treasury = _rdc(fee, index) if v35 else _rdh(fee, index)
        if treasury > s_c:
            treasury = s_c
            fee = _rmf(s_c, index) if v35 else _rmh(s_c, index)
        s_c -= treasury
    scaled[coll] = (s_c, scaled[coll][1])
    if no_collateral_left:
        for i in range(state.reserves_count):  # _burnBadDebt
            a = state.reserves_list.get(i)
            if not (cfg >> (2 * i)) & 1 or a is None or not res[a].configuration.active:
                continue
            update(a)
            s = scaled.get(a, (0, 0))[1]
            burn_debt(a, _rmc(s, vbi[a]) if v35 else _rmh(s, vbi[a]), 0)
    return _Expected(repaid, seized, fee, scaled, deficits, cfg, treasury)


def test_v33_v34_v35_liquidations_match_an_independent_derivation() -> None:
    compared = 0
    for seed in SEEDS:
        rng = random.Random(seed)
        sample = _sample_market(rng)
        prices = dict(sample.prices)
        for rules in (V3_3, V3_4, V3_5):
            state = copy.deepcopy(sample.state)
            assert isinstance(state, AaveV3State)
            state.rules = rules
            state.index_cache.clear()
            ts = sample.timestamp + rng.choice((0, 3_600, 30 * 86_400))
            for user in sample.users:
                owed = {p.asset: p.debt for p in ADAPTER.positions(state, user, ts)}
                for coll in sample.assets:
                    for debt in sample.assets:
                        # and covers leaving about $1,000 of debt: the dust rule's boundary
                        unit = 10**state.reserves[debt].configuration.decimals
                        dust = -(-1000 * 10**8 * unit // prices[debt])
                        edges = [(owed.get(debt, 0) - dust + k, False) for k in (-1, 0, 1)
                                 if owed.get(debt, 0) - dust + k > 0]
                        for cover, receive in ((MAX, False), (rng.randrange(1, 10**22), False), (MAX, True),
                                               *edges):
                            where = (seed, rules.version, user, coll, debt, cover, receive)
                            out = ADAPTER.liquidate(state, user, coll, debt, cover, prices, ts, receive,
                                                    liquidator=LIQUIDATOR)
                            try:
                                want = _derive(state, user, coll, debt, cover, prices, ts, rules)
                            except _Reverts:
                                assert not out.ok, where
                                continue
                            assert out.ok, (where, out.revert_reason)
                            compared += 1
                            assert (out.debt_repaid, out.collateral_seized, out.protocol_fee) == \
                                (want.debt_repaid, want.collateral, want.fee), where
                            assert dict(out.bad_debt) == want.deficits, where
                            assert isinstance(out.effects, Effects)
                            after = {a: new for a, _, new in out.effects.users}
                            assert after[user].configuration == want.configuration, where
                            for asset, (s_a, s_d) in want.scaled.items():
                                ur = after[user].reserves.get(asset)
                                got = (ur.scaled_a_token_balance, ur.scaled_variable_debt) if ur else (0, 0)
                                assert got == (s_a, s_d), (where, asset)
                            treasury = state.reserves[coll].treasury
                            before = state.user(treasury).reserve(coll).scaled_a_token_balance
                            now = after[treasury].reserve(coll).scaled_a_token_balance if treasury in after \
                                else before
                            assert now - before == want.treasury_scaled, where
    assert compared > 1000  # the samples reach the capped, dust-free and deficit paths often enough
