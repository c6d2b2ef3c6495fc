"""A real Aave v2 market (npm ``@aave/protocol-v2`` 1.0.1 bytecode) on anvil: deployment, interest,
account data and liquidations checked to the wei against docs/protocol-rules.md §1.

Expected values are computed here by hand from stored state only (scaled balances, the indices,
rates and update timestamps of the reserves, the stable-debt principal/rate/timestamp, block
timestamps) with own half-up helpers and v2's MathUtils interest formulas, plus the configured
LT/LTV/bonus and the prices we transmitted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ingest.devchain import DevChain, DevChainError, TxReverted
from tests.protocols.aave_v2_market import (
    AAVE_V2_COMMIT,
    AAVE_V2_NPM_VERSION,
    MAX_UINT256,
    TREASURY,
    AaveV2Market,
    AccountData,
    aave_v2_artifact,
    aave_v2_immutable_references,
    linked_bytecode,
    protocol_v2_dir,
)

pytestmark = pytest.mark.anvil

GENESIS = 1_700_000_000
WAD, RAY, PCT = 10**18, 10**27, 10**4
DAY, YEAR = 86_400, 365 * 86_400
EIP1967_IMPL = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"


@pytest.fixture
def aave_v2_market(anvil_factory: Any) -> Iterator[AaveV2Market]:
    """A fresh default v2 market on a new anvil with a fixed genesis and 12 s blocks."""
    chain = DevChain(anvil_factory(timestamp=GENESIS).url)
    try:
        yield AaveV2Market.deploy(chain, block_interval=12)
    finally:
        chain.close()


# ----- v2 math, by hand -----

def percent_mul(v: int, p: int) -> int:
    return (v * p + PCT // 2) // PCT


def percent_div(v: int, p: int) -> int:
    return (v * PCT + p // 2) // p


def wad_div(a: int, b: int) -> int:
    return (a * WAD + b // 2) // b


def ray_mul(a: int, b: int) -> int:
    return (a * b + RAY // 2) // RAY


def ray_div(a: int, b: int) -> int:
    return (a * RAY + b // 2) // b


def linear_interest(rate: int, last: int, now: int) -> int:
    return rate * (now - last) // YEAR + RAY


def compounded_interest(rate: int, last: int, now: int) -> int:
    """MathUtils.calculateCompoundedInterest: 3-term binomial expansion of (1 + r/YEAR)^dt."""
    exp = now - last
    if exp == 0:
        return RAY
    per_s = rate // YEAR
    p2 = ray_mul(per_s, per_s)
    p3 = ray_mul(p2, per_s)
    return RAY + per_s * exp + exp * (exp - 1) * p2 // 2 + exp * (exp - 1) * max(exp - 2, 0) * p3 // 6


def timestamp(m: AaveV2Market, block: int) -> int:
    return int(m.chain.block(block)["timestamp"], 16)


def income(m: AaveV2Market, sym: str, block: int, ts: int) -> int:
    """ReserveLogic.getNormalizedIncome at time ``ts`` from the reserve stored at ``block``."""
    rd = m.reserve_data(sym, block)
    return ray_mul(linear_interest(rd["currentLiquidityRate"], rd["lastUpdateTimestamp"], ts),
                   rd["liquidityIndex"])


def debt_index(m: AaveV2Market, sym: str, block: int, ts: int) -> int:
    rd = m.reserve_data(sym, block)
    return ray_mul(compounded_interest(rd["currentVariableBorrowRate"], rd["lastUpdateTimestamp"], ts),
                   rd["variableBorrowIndex"])


def stable_debt(m: AaveV2Market, user: str, sym: str, block: int, ts: int) -> int:
    principal, rate, last = m.stable_debt_position(user, sym, block)
    return ray_mul(principal, compounded_interest(rate, last, ts)) if principal else 0


def user_debt(m: AaveV2Market, user: str, sym: str, block: int, ts: int) -> tuple[int, int]:
    """(variable, stable) debt of ``user`` at time ``ts`` from the state stored at ``block``."""
    return (ray_mul(m.variable_debt_scaled(user, sym, block), debt_index(m, sym, block, ts)),
            stable_debt(m, user, sym, block, ts))


def expected_account(m: AaveV2Market, user: str, block: int, prices: dict[str, int],
                     collateral: list[str], debts: list[str], ts: int | None = None) -> AccountData:
    """§1: collETH_i = floor(price_i * aBalance_i / 10^dec_i); avgLT/avgLTV floor-weighted;
    debtETH_i = floor(price_i * (stable + variable) / 10^dec_i); HF = wadDiv(percentMul(coll, avgLT),
    debt). State as stored at ``block``, time ``ts`` (default: that block's, i.e. what
    getUserAccountData returns there; ts of block L with state of L-1 = what a tx in L saw)."""
    ts = timestamp(m, block) if ts is None else ts
    total_coll = lt_sum = ltv_sum = total_debt = 0
    for sym in collateral:
        spec = m.reserve(sym).spec
        coll = prices[sym] * ray_mul(m.a_scaled_balance(user, sym, block), income(m, sym, block, ts)) \
            // 10**spec.decimals
        total_coll += coll
        lt_sum += coll * spec.liquidation_threshold
        ltv_sum += coll * spec.ltv
    for sym in debts:
        total_debt += prices[sym] * sum(user_debt(m, user, sym, block, ts)) // m.reserve(sym).unit
    avg_lt = lt_sum // total_coll if total_coll else 0
    avg_ltv = ltv_sum // total_coll if total_coll else 0
    avail = max(percent_mul(total_coll, avg_ltv) - total_debt, 0)
    hf = wad_div(percent_mul(total_coll, avg_lt), total_debt) if total_debt else MAX_UINT256
    return AccountData(total_coll, total_debt, avail, avg_lt, avg_ltv, hf)


def expected_liquidation(m: AaveV2Market, user: str, coll_sym: str, debt_sym: str, debt_to_cover: int,
                         prices: dict[str, int], block: int, ts: int) -> tuple[int, int]:
    """§1 LendingPoolCollateralManager: (debt repaid, collateral seized) for a liquidation at time
    ``ts`` on the state stored at ``block``."""
    coll, debt = m.reserve(coll_sym), m.reserve(debt_sym)
    variable, stable = user_debt(m, user, debt_sym, block, ts)
    actual = min(debt_to_cover, percent_mul(variable + stable, 5000))      # 50 % close factor
    balance = ray_mul(m.a_scaled_balance(user, coll_sym, block), income(m, coll_sym, block, ts))
    bonus = coll.spec.liquidation_bonus
    # v2 order: percentMul on the big numerator, then the floor division
    max_coll = percent_mul(prices[debt_sym] * actual * coll.unit, bonus) // (prices[coll_sym] * debt.unit)
    if max_coll > balance:
        needed = percent_div(prices[coll_sym] * balance * debt.unit // (prices[debt_sym] * coll.unit), bonus)
        return min(actual, needed), balance
    return actual, max_coll


# ----- tests -----

def _immutable_words(code: bytes, refs: list[tuple[int, int]]) -> set[int]:
    return {int.from_bytes(code[s:s + n], "big") for s, n in refs}


def _masked(code: bytes, want: bytes, refs: list[tuple[int, int]]) -> bytes:
    out = bytearray(code)
    for s, n in refs:
        out[s:s + n] = want[s:s + n]
    return bytes(out)


def test_deployment_is_the_npm_bytecode_and_configured(aave_v2_market: AaveV2Market) -> None:
    m = aave_v2_market
    chain = m.chain

    def code_at(address: str) -> bytes:
        return bytes.fromhex(chain.rpc("eth_getCode", [address, "latest"])[2:])

    assert (AAVE_V2_NPM_VERSION, AAVE_V2_COMMIT[:8]) == ("1.0.1", "9169e0db")
    assert json.loads((protocol_v2_dir() / "package.json").read_text())["version"] == "1.0.1"
    # libraries: the artifact's runtime code (ValidationLogic linked to GenericLogic), except the
    # 20-byte self address of the call guard
    assert set(m.libraries) == {"ReserveLogic", "GenericLogic", "ValidationLogic"}
    for lib, addr in m.libraries.items():
        code = code_at(addr)
        want = linked_bytecode(aave_v2_artifact(lib), m.libraries, runtime=True)
        assert len(code) == len(want) and code[:1] + code[21:] == want[:1] + want[21:], lib
        assert code[1:21].hex() == addr[2:]
    assert {lib for refs in aave_v2_artifact("LendingPool")["linkReferences"].values() for lib in refs} == \
        {"ReserveLogic", "ValidationLogic"}
    # contracts without immutables: byte for byte the (linked) artifact
    for c in (m.pool_impl, m.configurator_impl, m.collateral_manager, m.reserve("WBTC").token):
        assert aave_v2_immutable_references(c.name) == []
        want = linked_bytecode(aave_v2_artifact(c.name), m.libraries, runtime=True)
        assert code_at(c.address) == want, c.name

    # contracts with immutables: artifact code elsewhere, the constructor's values in the slots
    def check(address: str, name: str, words: set[int]) -> None:
        code, want = code_at(address), linked_bytecode(aave_v2_artifact(name), {}, runtime=True)
        refs = aave_v2_immutable_references(name)
        assert refs and len(code) == len(want), name
        assert _masked(code, want, refs) == want, name
        assert _immutable_words(code, refs) == words, name

    def word(a: str) -> int:
        return int(a, 16)

    pool, provider, configurator = (word(c.address) for c in (m.pool, m.provider, m.configurator))
    for r in m.reserves.values():
        assert r.a_token_impl and r.stable_debt_impl and r.variable_debt_impl and r.a_token
        check(r.a_token_impl.address, "AToken", {pool, word(r.address), word(TREASURY), 0})
        check(r.stable_debt_impl.address, "StableDebtToken", {pool, word(r.address), 0})
        check(r.variable_debt_impl.address, "VariableDebtToken", {pool, word(r.address), 0})
        rs = r.spec.rates
        check(r.strategy.address, "DefaultReserveInterestRateStrategy",
              {provider, RAY - rs.optimal_utilization_rate, *rs.args()})
        # token proxies created by the configurator point at this reserve's implementations
        check(r.a_token.address, "InitializableImmutableAdminUpgradeabilityProxy", {configurator})
        assert chain.rpc("eth_getStorageAt", [r.a_token.address, EIP1967_IMPL, "latest"])[-40:] == \
            r.a_token_impl.address[2:]
    check(m.oracle.address, "AaveOracle", {word(m.reserve("WETH").address)})
    for proxy, impl in ((m.pool, m.pool_impl), (m.configurator, m.configurator_impl)):
        check(proxy.address, "InitializableImmutableAdminUpgradeabilityProxy", {provider})
        slot = chain.rpc("eth_getStorageAt", [proxy.address, EIP1967_IMPL, "latest"])
        assert slot[-40:] == impl.address[2:]

    assert chain.call(m.pool, "LENDINGPOOL_REVISION")[0] == 2
    assert chain.call(m.pool, "MAX_NUMBER_RESERVES")[0] == 128
    p = m.provider
    assert (chain.call(p, "getPriceOracle")[0], chain.call(p, "getLendingRateOracle")[0],
            chain.call(p, "getLendingPoolCollateralManager")[0], chain.call(p, "getPoolAdmin")[0],
            chain.call(p, "getEmergencyAdmin")[0]) == \
        (m.oracle.address, m.rate_oracle.address, m.collateral_manager.address, m.admin, m.admin)
    assert [a.lower() for a in chain.call(m.pool, "getReservesList")[0]] == \
        [r.address for r in m.reserves.values()]
    for sym, r in m.reserves.items():
        s, rd = r.spec, m.reserve_data(sym)
        assert rd["configuration"] == {
            "ltv": s.ltv, "liquidation_threshold": s.liquidation_threshold,
            "liquidation_bonus": s.liquidation_bonus, "decimals": s.decimals, "active": True,
            "frozen": False, "borrowing": True, "stable_borrowing": True, "reserve_factor": s.reserve_factor}
        assert (rd["liquidityIndex"], rd["variableBorrowIndex"]) == (RAY, RAY)
        assert rd["interestRateStrategyAddress"].lower() == r.strategy.address
        assert m.price(sym) == s.price
        assert chain.call(m.rate_oracle, "getMarketBorrowRate", r.address)[0] == s.market_borrow_rate
        assert r.a_token is not None
        assert (chain.call(r.a_token, "symbol")[0], chain.call(r.a_token, "decimals")[0],
                chain.call(r.a_token, "RESERVE_TREASURY_ADDRESS")[0]) == (f"a{sym}", s.decimals, TREASURY)
    # WETH: priced 1e18 by the oracle itself (constructor `weth`), no source, no feed
    weth = m.reserve("WETH")
    assert chain.call(m.oracle, "WETH")[0] == weth.address
    assert int(chain.call(m.oracle, "getSourceOfAsset", weth.address)[0], 16) == 0
    with pytest.raises(DevChainError):
        m.set_price("WETH", 2 * WAD)
    feed = m.reserve("USDC").feed
    assert feed is not None and chain.call(feed, "decimals")[0] == 18


def test_account_data_interest_and_liquidation_match_section_1(aave_v2_market: AaveV2Market) -> None:
    m = aave_v2_market
    _, alice, bob, carol, liq = m.chain.accounts[:5]
    prices = {s: r.spec.price for s, r in m.reserves.items()}
    usdc, weth = m.reserve("USDC"), m.reserve("WETH")

    # liquidity, and a WETH borrower so that the WETH liquidity index moves too
    m.deposit(bob, "USDC", 1_000_000 * 10**6, fund=True)
    m.deposit(bob, "DAI", 1_000_000 * 10**18, fund=True)
    m.deposit(carol, "WETH", 100 * 10**18, fund=True)
    m.borrow(bob, "WETH", 60 * 10**18)

    dep = m.deposit(alice, "WETH", 10 * 10**18, fund=True)
    assert dep.all("ReserveUsedAsCollateralEnabled")                      # first deposit: collateral on
    m.deposit(alice, "WBTC", 50_000_000, fund=True)                       # 0.5 WBTC = 7.5 ETH
    assert m.borrow(alice, "USDC", 10_000 * 10**6).event("Borrow")["borrowRateMode"] == 2
    stable = m.borrow(alice, "DAI", 5_000 * 10**18, mode=1).event("Borrow")
    # stable rate = market borrow rate (LendingRateOracle) + slope1 * U / optimal with U before the
    # borrow, here 0 (first DAI borrow)
    assert (stable["borrowRateMode"], stable["borrowRate"]) == (1, m.reserve("DAI").spec.market_borrow_rate)
    assert m.user_configuration(alice) == {"WETH": (False, True), "WBTC": (False, True),
                                           "USDC": (True, False), "DAI": (True, False)}

    m.advance_time(30 * DAY)
    b = m.chain.block_number()
    ts = timestamp(m, b)
    # interest: the pool's normalized indices and the token balances are v2's formulas
    assert m.normalized_income("WETH", b) == income(m, "WETH", b, ts) > RAY
    assert m.normalized_debt("USDC", b) == debt_index(m, "USDC", b, ts) > RAY
    bal = {s: m.balances(alice, s, b) for s in ("WETH", "USDC", "DAI")}
    assert bal["WETH"].a_token == ray_mul(bal["WETH"].a_token_scaled, income(m, "WETH", b, ts)) > 10 * 10**18
    assert bal["USDC"].variable_debt == \
        ray_mul(bal["USDC"].variable_debt_scaled, debt_index(m, "USDC", b, ts)) > 10_000 * 10**6
    assert bal["DAI"].stable_debt == stable_debt(m, alice, "DAI", b, ts) > 5_000 * 10**18
    assert bal["DAI"].variable_debt == 0

    got = m.get_user_account_data(alice, b)
    assert got == expected_account(m, alice, b, prices, ["WETH", "WBTC"], ["USDC", "DAI"])
    # floor((10*8250 + 7.5*7500)/17.5) = 7928 at deposit; 30 days of WETH interest tip it to 7929
    assert (got.current_liquidation_threshold, got.ltv) == (7929, 7572)
    assert 1.84e18 < got.health_factor < 1.86e18

    # healthy: the collateral manager's code 42 (HEALTH_FACTOR_NOT_BELOW_THRESHOLD) as revert reason
    m.fund(liq, "USDC", 20_000 * 10**6)
    healthy = m.liquidate(liq, "WETH", "USDC", alice, MAX_UINT256)
    assert not healthy.ok and healthy.reason == "42"
    with pytest.raises(TxReverted) as exc:
        m.liquidate(liq, "WETH", "USDC", alice, MAX_UINT256, check=True)
    assert exc.value.reason == "42"

    # ETH/USD 2000 -> ~1000: the stablecoins' ETH prices double, HF ~0.92
    prices["USDC"], prices["DAI"] = 1_000_123_456_789_150, 1_003_456_789_000_000
    m.set_price("USDC", prices["USDC"], observations=[prices["USDC"], 2 * 10**15, 10**14])
    m.set_price("DAI", prices["DAI"])
    assert (m.price("USDC"), m.price("DAI"), m.price("WETH")) == (prices["USDC"], prices["DAI"], WAD)
    b = m.chain.block_number()
    acct = m.get_user_account_data(alice, b)
    assert acct == expected_account(m, alice, b, prices, ["WETH", "WBTC"], ["USDC", "DAI"])
    assert 0.9e18 < acct.health_factor < WAD
    # the other codes, in ValidationLogic order
    assert m.liquidate(liq, "USDC", "USDC", alice, MAX_UINT256).reason == "43"  # not her collateral
    assert m.liquidate(liq, "WETH", "WBTC", alice, MAX_UINT256).reason == "44"  # not borrowed

    assert weth.variable_debt is not None
    pre = m.chain.block_number()
    before = {"a_scaled": m.a_scaled_balance(alice, "WETH", pre),
              "d_scaled": m.variable_debt_scaled(alice, "USDC", pre),
              "liq_usdc": m.token_balance(liq, "USDC", pre),
              "treasury": m.a_scaled_balance(TREASURY, "WETH", pre),
              "weth_debt": m.reserve_data("WETH", pre)["variableBorrowIndex"],
              "weth_scaled_debt": m.chain.call(weth.variable_debt, "scaledTotalSupply", block=pre)[0]}
    res = m.liquidate(liq, "WETH", "USDC", alice, MAX_UINT256)
    assert res.ok, res.reason
    L = res.block_number
    assert L == pre + 1
    tsL = timestamp(m, L)
    hf = expected_account(m, alice, L - 1, prices, ["WETH", "WBTC"], ["USDC", "DAI"], ts=tsL).health_factor
    assert hf < WAD
    debt, coll = expected_liquidation(m, alice, "WETH", "USDC", MAX_UINT256, prices, L - 1, tsL)
    assert debt == percent_mul(user_debt(m, alice, "USDC", L - 1, tsL)[0], 5000)   # close factor, not capped
    # the v3 order (floor division first, then percentMul) would give 1 wei less at this price
    assert coll == percent_mul(prices["USDC"] * debt * weth.unit // (WAD * usdc.unit), 10500) + 1
    assert res.event("LiquidationCall") == {
        "collateralAsset": weth.address, "debtAsset": usdc.address, "user": alice, "debtToCover": debt,
        "liquidatedCollateralAmount": coll, "liquidator": liq, "receiveAToken": False}
    assert res.events[-1].name == "LiquidationCall" and res.events[-1].address == m.pool.address
    # balances moved by exactly these amounts: the whole bonus goes to the liquidator (no fee)
    w_idx = m.reserve_data("WETH", L)["liquidityIndex"]
    u_idx = m.reserve_data("USDC", L)["variableBorrowIndex"]
    assert (w_idx, u_idx) == (income(m, "WETH", L - 1, tsL), debt_index(m, "USDC", L - 1, tsL))
    assert m.token_balance(liq, "WETH", L) == coll
    assert before["liq_usdc"] - m.token_balance(liq, "USDC", L) == debt
    assert m.a_scaled_balance(alice, "WETH", L) == before["a_scaled"] - ray_div(coll, w_idx)
    assert m.variable_debt_scaled(alice, "USDC", L) == before["d_scaled"] - ray_div(debt, u_idx)
    # the treasury only got WETH's reserve-factor share of the borrow interest since the last update
    new_debt_idx = m.reserve_data("WETH", L)["variableBorrowIndex"]
    accrued = ray_mul(before["weth_scaled_debt"], new_debt_idx) - ray_mul(before["weth_scaled_debt"],
                                                                          before["weth_debt"])
    assert m.a_scaled_balance(TREASURY, "WETH", L) - before["treasury"] == \
        ray_div(percent_mul(accrued, weth.spec.reserve_factor), w_idx) > 0
    after = m.get_user_account_data(alice, L)
    assert after == expected_account(m, alice, L, prices, ["WETH", "WBTC"], ["USDC", "DAI"])
    assert after.health_factor > hf


def test_collateral_cap_and_no_write_off(aave_v2_market: AaveV2Market) -> None:
    m = aave_v2_market
    _, dave, bob, liq = m.chain.accounts[:4]
    prices = {s: r.spec.price for s, r in m.reserves.items()}
    wbtc, usdc = m.reserve("WBTC"), m.reserve("USDC")
    m.deposit(bob, "USDC", 1_000_000 * 10**6, fund=True)
    m.deposit(bob, "WBTC", 10 * 10**8, fund=True)
    m.deposit(dave, "WBTC", 10**8, fund=True)                             # 1 WBTC = 15 ETH
    m.borrow(bob, "WBTC", 3 * 10**8)                                      # moves WBTC's index
    m.borrow(dave, "USDC", 20_000 * 10**6)                                # 10 ETH, HF 1.125
    # over the LTV: VL_COLLATERAL_CANNOT_COVER_NEW_BORROW
    assert m.borrow(dave, "USDC", 2_000 * 10**6, check=False).reason == "11"
    m.advance_time(10 * DAY)

    # BTC/ETH 15 -> 4.1234...: the 50 % close factor would seize ~1.3 WBTC, more than dave has
    prices["WBTC"] = 4_123_456_789_012_345_678
    m.set_price("WBTC", prices["WBTC"])
    b = m.chain.block_number()
    assert m.get_user_account_data(dave, b) == expected_account(m, dave, b, prices, ["WBTC"], ["USDC"])
    assert m.a_balance(dave, "WBTC", b) > 10**8                          # the deposit earned interest

    m.fund(liq, "USDC", 20_000 * 10**6)
    m.ensure_approved(liq, "USDC")
    pre = m.chain.block_number()
    liq_usdc, d_scaled = m.token_balance(liq, "USDC", pre), m.variable_debt_scaled(dave, "USDC", pre)
    res = m.liquidate(liq, "WBTC", "USDC", dave, MAX_UINT256, receive_atoken=True)
    assert res.ok, res.reason
    L = res.block_number
    assert L == pre + 1
    tsL = timestamp(m, L)
    debt, coll = expected_liquidation(m, dave, "WBTC", "USDC", MAX_UINT256, prices, L - 1, tsL)
    balance = ray_mul(m.a_scaled_balance(dave, "WBTC", L - 1), income(m, "WBTC", L - 1, tsL))
    variable = user_debt(m, dave, "USDC", L - 1, tsL)[0]
    assert coll == balance                                                # capped at the balance
    assert debt == percent_div(prices["WBTC"] * coll * usdc.unit // (prices["USDC"] * wbtc.unit), 10650) \
        < percent_mul(variable, 5000)
    assert res.event("LiquidationCall") == {
        "collateralAsset": wbtc.address, "debtAsset": usdc.address, "user": dave, "debtToCover": debt,
        "liquidatedCollateralAmount": coll, "liquidator": liq, "receiveAToken": True}
    assert [e.args["user"] for e in res.all("ReserveUsedAsCollateralDisabled")] == [dave]
    assert [e.args["user"] for e in res.all("ReserveUsedAsCollateralEnabled")] == [liq]
    # receiveAToken: the liquidator holds the aTokens (no underlying moved); dave's are all gone
    assert m.a_scaled_balance(dave, "WBTC", L) == 0
    assert m.a_balance(liq, "WBTC", L) == coll and m.token_balance(liq, "WBTC", L) == 0
    assert liq_usdc - m.token_balance(liq, "USDC", L) == debt
    u_idx = m.reserve_data("USDC", L)["variableBorrowIndex"]
    assert u_idx == debt_index(m, "USDC", L - 1, tsL)
    left = d_scaled - ray_div(debt, u_idx)
    assert m.variable_debt_scaled(dave, "USDC", L) == left > 0

    # no write-off: the rest of the debt stays on dave with no collateral, HF 0, and keeps growing
    acct = m.get_user_account_data(dave, L)
    assert acct == AccountData(0, prices["USDC"] * ray_mul(left, u_idx) // usdc.unit, 0, 0, 0, 0)
    assert acct.total_debt_eth > 0
    assert m.user_configuration(dave, L) == {"WETH": (False, False), "WBTC": (False, False),
                                             "USDC": (True, False), "DAI": (False, False)}
    m.advance_time(30 * DAY)
    b = m.chain.block_number()
    assert m.variable_debt(dave, "USDC", b) == ray_mul(left, debt_index(m, "USDC", b, timestamp(m, b))) > \
        ray_mul(left, u_idx)
    assert m.get_user_account_data(dave, b).health_factor == 0
    # nothing left to seize: the collateral is no longer enabled
    assert m.liquidate(liq, "WBTC", "USDC", dave, MAX_UINT256).reason == "43"
    assert m.variable_debt_scaled(dave, "USDC") == left


def test_api_stable_repay_withdraw_collateral_switch(aave_v2_market: AaveV2Market) -> None:
    m = aave_v2_market
    bob = m.chain.accounts[2]
    m.deposit(bob, "DAI", 100_000 * 10**18, fund=True)
    frank = m.new_user()                                                  # impersonated, no key
    m.deposit(frank, "WETH", 10**18, fund=True)
    snap = m.snapshot()
    # stable borrow: balance = principal compounded at the user's rate (3-term MathUtils series)
    m.borrow(frank, "DAI", 100 * 10**18, mode=1)
    principal, rate, last = m.stable_debt_position(frank, "DAI")
    assert principal == 100 * 10**18 and rate == m.reserve("DAI").spec.market_borrow_rate
    m.advance_time(DAY)
    b = m.chain.block_number()
    assert m.stable_debt(frank, "DAI", b) == \
        ray_mul(principal, compounded_interest(rate, last, timestamp(m, b))) > principal
    assert m.balances(frank, "DAI", b).variable_debt == 0
    # the only collateral cannot be switched off while borrowing: VL_DEPOSIT_ALREADY_IN_USE
    assert m.set_collateral(frank, "WETH", False, check=False).reason == "20"
    with pytest.raises(TxReverted) as exc:
        m.repay(frank, "DAI", 10**18, mode=2)                             # no variable debt
    assert exc.value.reason == "15"                                       # VL_NO_DEBT_OF_SELECTED_TYPE
    m.mint(frank, "DAI", 10**18)                                          # for the interest
    repay = m.repay(frank, "DAI", MAX_UINT256, mode=1)
    assert repay.event("Repay")["amount"] > 100 * 10**18
    assert m.stable_debt(frank, "DAI") == 0
    assert m.user_configuration(frank)["DAI"] == (False, False)
    m.set_collateral(frank, "WETH", False)
    assert m.get_user_account_data(frank).total_collateral_eth == 0
    m.withdraw(frank, "WETH", MAX_UINT256)
    assert m.balances(frank, "WETH").underlying == 10**18
    # snapshot/revert: back to before the borrow
    m.revert(snap)
    assert m.stable_debt(frank, "DAI") == 0 and m.a_balance(frank, "WETH") == 10**18
    assert m.borrow(frank, "DAI", 10**18, mode=1).ok
