"""Liquidations of GHO debt: the port against the real Aave v3.0.2 Pool and the real GHO token.

The market is the real v3.0.2 one on anvil (npm ``@aave/core-v3`` 1.19.3 bytecode,
:class:`tests.protocols.aave_v3_market.AaveV3Market`) with one more reserve, ``GHOX``, whose
variable debt token is gho-core @ 51be447's ``GhoVariableDebtToken`` (vendored unchanged,
``tests/contracts/gho-core``), with the real ``GhoDiscountRateStrategy`` and the harness
discount token (stkAAVE balances and its transfer hook, ``tests/contracts/gho``). Borrowers with
different stkAAVE balances (no discount, partial, the full 30 %) borrow GHOX against WETH, some
repay part of it or move stkAAVE, interest accrues for weeks, WETH falls; then each is
liquidated through ``Pool.liquidationCall``, the pool reading the token's discounted
``balanceOf`` (``_calculateDebt``) and burning through its ``burn``.

For each liquidation the adapter's prediction on the state **rebuilt from the market's logs**
(the pool's, configurator's and tokens', ``DiscountPercentUpdated`` included; the rate strategies
and treasury accrual, which no event carries, copied from storage) must equal the chain's: the
revert reason or the ``LiquidationCall`` amounts and every event of the pool and the Aave tokens
(the token's ``DiscountPercentUpdated`` excepted: the new percent comes from the stkAAVE balance,
which the port does not have, and it emits none). After it, the state rebuilt with the mined
transaction's logs holds the token's scaled balance, previous index and discount percent.

Not compared: ``getBalanceFromInterest`` (the reserve's aToken here is Aave's own, whose
``handleRepayment`` is a no-op, not the ``GhoAToken`` that reduces it; the token-level test
compares it where no repayment is involved).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace

import pytest

from ingest.devchain import Contract, DevChain
from protocols.aave_v3 import AaveV3Adapter, AaveV3State
from tests.protocols import diffkit as kit
from tests.protocols.aave_v3_chain_state import read_state
from tests.protocols.aave_v3_market import MAX_UINT256, AaveV3Market, Reserve, ReserveSpec

ADAPTER = AaveV3Adapter()
APPLIED = {(s.role, s.signature) for s in ADAPTER.events}
ZERO = "0x" + "00" * 20
GHOX = ReserveSpec("GHOX", 18, 10**8, flash_loans=False)
WAD = 10**18


class _GhoMarket:
    def __init__(self, chain: DevChain):
        m = self.m = AaveV3Market.deploy(chain, block_interval=kit.BLOCK_INTERVAL)
        spec = GHOX
        token = m._deploy("MintableERC20", spec.symbol, spec.symbol, spec.decimals)
        agg, feed = m._deploy_feed(spec.symbol, spec.price, 8, "USD")
        strategy = m._deploy("DefaultReserveInterestRateStrategy", m.provider.address, *spec.rates.args())
        r = Reserve(spec=spec, token=token, aggregator=agg, feed=feed, strategy=strategy)
        m._add_reserve(r)
        m._admin_send(m.oracle, "setAssetSources", [r.address], [feed.address])
        impl = m._deploy_test("GhoVariableDebtToken", m.pool.address)
        m._admin_send(m.configurator, "initReserves", [(
            m.a_token_impl.address, m.stable_debt_impl.address, impl.address, 18, strategy.address,
            r.address, m.treasury, ZERO, "Aave test GHOX", "aGHOX", "Aave test variable debt GHOX",
            "variableDebtGHOX", "Aave test stable debt GHOX", "stableDebtGHOX", b"")])
        data = chain.call(m.pool, "getReserveData", r.address)[0]
        r.a_token, r.stable_debt, proxy = m._token_proxies(data, 8)
        self.vgho = r.variable_debt = Contract(proxy.address, impl.abi, "GhoVariableDebtToken")
        m._abi_at[proxy.address] = self.vgho
        m._configure_reserve(r)
        self.stk = m._deploy_test("GhoHarnessDiscountToken")
        chain.send(self.stk, "setGhoDebtToken", self.vgho.address)
        m._admin_send(self.vgho, "updateDiscountToken", self.stk.address)
        discount_strategy = m._deploy_test("GhoDiscountRateStrategy")
        m._admin_send(self.vgho, "updateDiscountRateStrategy", discount_strategy.address)
        self.lp = m.new_user()
        m.supply(self.lp, "GHOX", 50_000_000 * WAD, fund=True)
        m.supply(self.lp, "WETH", 1_000 * WAD, fund=True)
        self.users: list[str] = []

    def rebuilt(self) -> AaveV3State:
        """The adapter state from every log of the market so far, with what no event carries
        (rate strategies, treasury accrual) copied from storage."""
        m = self.m
        state = ADAPTER.new_state(pool=m.pool.address)
        state.discount_debt_tokens.add(self.vgho.address)  # the deployment data's part
        for e in kit.logged_events(m, kit.token_roles(m, "pool", "pool_configurator")):
            if (e.role, e.signature) in APPLIED:
                ADAPTER.apply(state, e)
        chain = read_state(m, set(state.users))
        for asset, r in state.reserves.items():
            c = chain.state.reserves[asset]
            state.reserves[asset] = replace(r, accrued_to_treasury=c.accrued_to_treasury,
                                            interest_rate_strategy=c.interest_rate_strategy)
        return state

    def token(self, fn: str, user: str) -> int:
        return int(self.m.chain.call(self.vgho, fn, user)[0])


def _history(chain: DevChain) -> _GhoMarket:
    g = _GhoMarket(chain)
    m, rng = g.m, random.Random(3)
    # stkAAVE: none, too little for any discount, partial (100 GHO per stkAAVE), the full 30 %
    for stk in (0, 10**14, 20 * WAD, 60 * WAD, 200 * WAD, 10_000 * WAD, 10_000 * WAD, 500 * WAD):
        u = m.new_user()
        g.users.append(u)
        m.supply(u, "WETH", rng.randrange(5, 12) * WAD, fund=True)
        avail = m.get_user_account_data(u).available_borrows_base
        m.borrow(u, "GHOX", avail * rng.randrange(80, 99) // 100 * WAD // 10**8)
        chain.send(g.stk, "setBalance", u, stk)
        chain.send(g.vgho, "rebalanceUserDiscountPercent", u)
    m.advance_time(40 * kit.DAY)
    m.fund(g.users[3], "GHOX", 10**6 * WAD)
    m.repay(g.users[3], "GHOX", 1_000 * WAD)  # a Burn with a discount, and a refresh
    # updateDiscountDistribution (a fixed gas limit: anvil's estimate for the hook falls short)
    chain.send(g.stk, "transfer", g.users[5], g.users[6], 9_990 * WAD, gas=3_000_000)
    m.advance_time(30 * kit.DAY)
    m.set_price("WETH", m.price("WETH") * 80 // 100)
    return g


@pytest.fixture(scope="module")
def market() -> Iterator[_GhoMarket]:
    yield from kit.on_anvil(_history)


def test_gho_liquidations_match_the_real_pool_and_token(market: _GhoMarket) -> None:
    g, m = market, market.m
    weth, ghox = m.asset("WETH"), m.asset("GHOX")
    discounted = liquidated = 0
    for i, u in enumerate(g.users):
        liquidator = m.new_user()
        m.fund(liquidator, "GHOX", 10**7 * WAD)
        state = g.rebuilt()
        ur = state.user(u).reserve(ghox)
        assert ur.discount_percent == g.token("getDiscountPercent", u)
        assert ur.variable_debt_previous_index == g.token("getPreviousIndex", u)
        head = m.chain.block()
        ts = int(head["timestamp"], 16) + kit.BLOCK_INTERVAL
        prices = {r.address: m.price(sym) for sym, r in m.reserves.items()}
        cover = MAX_UINT256 if i % 2 == 0 else 500 * WAD
        outcome = ADAPTER.liquidate(state, u, weth, ghox, cover, prices, ts, liquidator=liquidator)
        res = m.liquidate(liquidator, "WETH", "GHOX", u, cover)
        assert res.block_number == int(head["number"], 16) + 1
        assert int(m.chain.block(res.block_number)["timestamp"], 16) == ts
        where = f"user {i} ({u}), discount {ur.discount_percent}"
        problem = kit.revert_problem(res, outcome, where)
        assert problem is None, problem
        if not res.ok:
            continue
        liquidated += 1
        discounted += bool(ur.discount_percent)
        on_chain = [e for e in kit.chain_events(m, res) if e[1] != "DiscountPercentUpdated"]
        mine = [(e.address, e.name, dict(e.args)) for e in outcome.events]
        assert on_chain == mine, f"{where}\n  chain   {on_chain}\n  adapter {mine}"
        ev = res.event("LiquidationCall")
        assert (ev["debtToCover"], ev["liquidatedCollateralAmount"]) == (outcome.debt_repaid,
                                                                           outcome.collateral_seized), where
        after = g.rebuilt().user(u).reserve(ghox)
        assert after.scaled_variable_debt == g.token("scaledBalanceOf", u), where
        assert after.discount_percent == g.token("getDiscountPercent", u), where
        if after.scaled_variable_debt:
            assert after.variable_debt_previous_index == g.token("getPreviousIndex", u), where
        committed = g.rebuilt()  # the outcome's own state writes give the same scaled debt
        pre = state
        ADAPTER.commit(pre, outcome)
        assert pre.user(u).reserve(ghox).scaled_variable_debt == \
            committed.user(u).reserve(ghox).scaled_variable_debt, where
    assert liquidated >= 6 and discounted >= 4, (liquidated, discounted)
