"""A real Aave v3.0.2 market (npm ``@aave/core-v3`` 1.19.3 bytecode) on anvil: deployment, account
data and a liquidation checked to the wei against the formulas of docs/protocol-rules.md §2.

Expected values are computed here by hand (own half-up helpers, configured LT/LTV/bonus/fee, the
prices we transmitted); only the time-dependent indices and scaled balances are read from chain.
"""

from __future__ import annotations

import pytest

from ingest.devchain import TxReverted
from tests.protocols.aave_v3_market import (
    AAVE_V3_CORE_NPM_VERSION,
    MAX_UINT256,
    TREASURY,
    AaveV3Market,
    AccountData,
    aave_artifact,
    aave_immutable_references,
    core_v3_dir,
    linked_bytecode,
)

pytestmark = pytest.mark.anvil

WAD, RAY, PCT = 10**18, 10**27, 10**4
DAY = 86_400


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


def expected_account(m: AaveV3Market, user: str, block: int, prices: dict[str, int],
                     collateral: list[str], debts: list[str], *, income: dict[str, int] | None = None,
                     debt_index: dict[str, int] | None = None) -> AccountData:
    """getUserAccountData by hand (v3.0, no e-mode): coll_i = floor(bal_i * price_i / unit_i) with
    bal_i = rayMul(scaled_i, index_i); avgLT/avgLTV = floor(sum(coll_i * x_i) / sum(coll_i));
    HF = wadDiv(percentMul(totalColl, avgLT), totalDebt). Indices are read at ``block`` unless
    given (the values a transaction in ``block`` used)."""
    income, debt_index = income or {}, debt_index or {}
    total_coll = lt_sum = ltv_sum = total_debt = 0
    for sym in collateral:
        spec = m.reserve(sym).spec
        idx = income.get(sym) or m.normalized_income(sym, block)
        bal = ray_mul(m.a_scaled_balance(user, sym, block), idx)
        coll = bal * prices[sym] // 10**spec.decimals
        total_coll += coll
        lt_sum += coll * spec.liquidation_threshold
        ltv_sum += coll * spec.ltv
    for sym in debts:
        idx = debt_index.get(sym) or m.normalized_debt(sym, block)
        debt = ray_mul(m.variable_debt_scaled(user, sym, block), idx) + m.stable_debt(user, sym, block)
        total_debt += debt * prices[sym] // m.reserve(sym).unit
    avg_lt, avg_ltv = lt_sum // total_coll, ltv_sum // total_coll
    avail = max(percent_mul(total_coll, avg_ltv) - total_debt, 0)
    hf = wad_div(percent_mul(total_coll, avg_lt), total_debt) if total_debt else MAX_UINT256
    return AccountData(total_coll, total_debt, avail, avg_lt, avg_ltv, hf)


def test_deployment_is_the_npm_bytecode_and_configured(aave_v3_market: AaveV3Market) -> None:
    m = aave_v3_market
    chain = m.chain
    assert AAVE_V3_CORE_NPM_VERSION == "1.19.3"
    assert (core_v3_dir() / "package.json").read_text().count('"version": "1.19.3"') == 1
    # libraries: runtime code is the artifact's, except the 20-byte self address (call guard)
    for lib, addr in m.libraries.items():
        code = chain.rpc("eth_getCode", [addr, "latest"])[2:]
        want = linked_bytecode(aave_artifact(lib), m.libraries, runtime=True).hex()
        assert len(code) == len(want) and code[:2] + code[42:] == want[:2] + want[42:], lib
        assert code[2:42] == addr[2:]
    # implementations: the artifact's runtime code, linked, with immutables filled in by the
    # constructor (Pool/AToken: the provider/pool address; PoolConfigurator, ERC20: none)
    word = {"Pool": m.provider.address, "AToken": None, "PoolConfigurator": None, "MintableERC20": None}
    for c in (m.pool_impl, m.a_token_impl, m.configurator_impl, m.reserve("WETH").token):
        code = bytearray(bytes.fromhex(chain.rpc("eth_getCode", [c.address, "latest"])[2:]))
        want = bytearray(linked_bytecode(aave_artifact(c.name), m.libraries, runtime=True))
        assert len(code) == len(want), c.name
        for start, length in aave_immutable_references(c.name):
            if word[c.name] is not None:
                assert code[start:start + length].hex() == word[c.name][2:].rjust(64, "0")
            code[start:start + length] = want[start:start + length]
        assert code == want, c.name
    # the proxies created by the provider point at our implementations (EIP-1967 slot)
    slot = "0x360894a13ba1a3210667c828492db98dca3e2076cc3735a920a3ca505d382bbc"
    for proxy, impl in ((m.pool, m.pool_impl), (m.configurator, m.configurator_impl)):
        assert chain.rpc("eth_getStorageAt", [proxy.address, slot, "latest"])[-40:] == impl.address[2:]
    assert chain.call(m.pool, "POOL_REVISION")[0] == 1
    assert chain.call(m.provider, "getPriceOracle")[0] == m.oracle.address
    assert chain.call(m.provider, "getACLManager")[0] == m.acl.address
    for role in ("isPoolAdmin", "isRiskAdmin", "isEmergencyAdmin"):
        assert chain.call(m.acl, role, m.admin)[0] is True
    assert [a.lower() for a in chain.call(m.pool, "getReservesList")[0]] == \
        [r.address for r in m.reserves.values()]
    assert chain.call(m.pool, "getEModeCategoryData", 1)[0][:3] == (9300, 9500, 10100)
    for sym, r in m.reserves.items():
        cfg = m.reserve_data(sym)["configuration"]
        s = r.spec
        assert (cfg["ltv"], cfg["liquidation_threshold"], cfg["liquidation_bonus"], cfg["decimals"]) == \
            (s.ltv, s.liquidation_threshold, s.liquidation_bonus, s.decimals)
        assert (cfg["reserve_factor"], cfg["liquidation_protocol_fee"], cfg["debt_ceiling"],
                cfg["emode_category"], cfg["borrowable_in_isolation"], cfg["active"]) == \
            (s.reserve_factor, s.liquidation_protocol_fee, s.debt_ceiling, s.emode_category,
             s.borrowable_in_isolation, True)
        assert m.price(sym) == s.price
        assert chain.call(r.a_token, "RESERVE_TREASURY_ADDRESS")[0] == TREASURY


def test_account_data_and_liquidation_match_v3_0_formulas(aave_v3_market: AaveV3Market) -> None:
    m = aave_v3_market
    _, alice, bob, carol, liq = m.chain.accounts[:5]
    prices = {s: r.spec.price for s, r in m.reserves.items()}
    usdc, weth = m.reserve("USDC"), m.reserve("WETH")

    # liquidity, and a WETH borrower so that the WETH liquidity index moves too
    m.supply(bob, "USDC", 1_000_000 * 10**6, fund=True)
    m.supply(carol, "WETH", 100 * 10**18, fund=True)
    m.borrow(bob, "WETH", 60 * 10**18)

    m.supply(alice, "WETH", 10 * 10**18, fund=True)
    m.supply(alice, "WBTC", 50_000_000, fund=True)        # 0.5 WBTC
    borrow = m.borrow(alice, "USDC", 26_000 * 10**6)
    assert borrow.event("Borrow")["amount"] == 26_000 * 10**6
    m.advance_time(30 * DAY)
    b = m.chain.block_number()
    assert m.normalized_income("WETH", b) > RAY and m.normalized_debt("USDC", b) > RAY

    got = m.get_user_account_data(alice, b)
    want = expected_account(m, alice, b, prices, ["WETH", "WBTC"], ["USDC"])
    assert got == want
    assert got.current_liquidation_threshold == 7928          # floor((20000*8250 + 15000*7500)/35000)
    assert got.ltv == 7571
    assert 1.06e18 < got.health_factor < 1.07e18

    # healthy: liquidation reverts with HEALTH_FACTOR_NOT_BELOW_THRESHOLD
    m.fund(liq, "USDC", 20_000 * 10**6)
    healthy = m.liquidate(liq, "WETH", "USDC", alice, MAX_UINT256)
    assert not healthy.ok and healthy.reason == "45"
    with pytest.raises(TxReverted) as exc:
        m.liquidate(liq, "WETH", "USDC", alice, MAX_UINT256, check=True)
    assert exc.value.reason == "45"

    # WETH 2000 -> 1688: HF ~ 0.969, in (0.95, 1): close factor 50 %. (Amounts are deterministic;
    # this price makes the fee's percentDiv rounding visible, see below.)
    prices["WETH"] = 1_688 * 10**8
    m.set_price("WETH", prices["WETH"], observations=[1_700 * 10**8, 1_688 * 10**8, 1_600 * 10**8])
    assert m.price("WETH") == prices["WETH"]
    b = m.chain.block_number()
    assert m.get_user_account_data(alice, b) == expected_account(m, alice, b, prices, ["WETH", "WBTC"],
                                                                 ["USDC"])
    # gates after the HF check, in ValidationLogic order
    assert m.liquidate(liq, "LINK", "USDC", alice, MAX_UINT256).reason == "46"  # not a collateral
    assert m.liquidate(liq, "WETH", "DAI", alice, MAX_UINT256).reason == "47"   # not borrowed

    before = {"a_scaled": m.a_scaled_balance(alice, "WETH"),
              "d_scaled": m.variable_debt_scaled(alice, "USDC"),
              "liq_usdc": m.token_balance(liq, "USDC")}
    res = m.liquidate(liq, "WETH", "USDC", alice, MAX_UINT256)
    assert res.ok, res.reason
    L = res.block_number
    # indices the transaction used: both reserves were updated in block L
    w_idx = m.reserve_data("WETH", L)["liquidityIndex"]
    u_idx = m.reserve_data("USDC", L)["variableBorrowIndex"]
    hf = expected_account(m, alice, L - 1, prices, ["WETH", "WBTC"], ["USDC"],
                          income={"WETH": w_idx}, debt_index={"USDC": u_idx}).health_factor
    assert 95 * 10**16 < hf < WAD

    user_debt = ray_mul(before["d_scaled"], u_idx)
    debt = percent_mul(user_debt, 5000)                        # close factor 50 %
    base = prices["USDC"] * debt * weth.unit // (prices["WETH"] * usdc.unit)
    coll = percent_mul(base, weth.spec.liquidation_bonus)
    assert coll < ray_mul(before["a_scaled"], w_idx)           # not capped by the balance
    bonus_coll = coll - percent_div(coll, weth.spec.liquidation_bonus)
    fee = percent_mul(bonus_coll, weth.spec.liquidation_protocol_fee)
    # at this price a floor percentDiv would change the fee: the half-up rounding is what is tested
    assert fee != percent_mul(coll - coll * PCT // weth.spec.liquidation_bonus,
                              weth.spec.liquidation_protocol_fee)
    assert fee > 0

    ev = res.event("LiquidationCall")
    assert ev == {"collateralAsset": weth.address, "debtAsset": usdc.address, "user": alice,
                  "debtToCover": debt, "liquidatedCollateralAmount": coll - fee, "liquidator": liq,
                  "receiveAToken": False}
    # balances moved by exactly those amounts
    assert m.token_balance(liq, "WETH", L) == coll - fee
    assert before["liq_usdc"] - m.token_balance(liq, "USDC", L) == debt
    assert m.a_scaled_balance(TREASURY, "WETH", L) == ray_div(fee, w_idx)
    assert m.a_scaled_balance(alice, "WETH", L) == \
        before["a_scaled"] - ray_div(coll - fee, w_idx) - ray_div(fee, w_idx)
    assert m.variable_debt_scaled(alice, "USDC", L) == before["d_scaled"] - ray_div(debt, u_idx)
    after = m.get_user_account_data(alice, L)
    assert after == expected_account(m, alice, L, prices, ["WETH", "WBTC"], ["USDC"])
    assert after.health_factor > hf


def test_emode_isolation_and_api(aave_v3_market: AaveV3Market) -> None:
    m = aave_v3_market
    _, dave, erin, bob = m.chain.accounts[:4]
    m.supply(bob, "USDC", 1_000_000 * 10**6, fund=True)
    m.supply(bob, "WETH", 100 * 10**18, fund=True)

    # e-mode 1 (stablecoins): category LTV/LT replace the reserve's
    m.supply(dave, "DAI", 10_000 * 10**18, fund=True)
    m.set_user_emode(dave, 1)
    assert m.user_emode(dave) == 1
    acct = m.get_user_account_data(dave)
    assert (acct.total_collateral_base, acct.ltv, acct.current_liquidation_threshold) == \
        (10_000 * 10**8, 9300, 9500)
    m.borrow(dave, "USDC", 9_000 * 10**6)                      # > 63 % reserve LTV, < 93 % e-mode LTV
    assert m.borrow(dave, "WETH", 10**15, check=False).reason == "58"   # INCONSISTENT_EMODE_CATEGORY

    # isolation mode: LINK has a debt ceiling; only "borrowable in isolation" assets can be borrowed
    # (3.0.1+: supplying an isolated asset does not enable it as collateral unless the supplier
    # has ISOLATED_COLLATERAL_SUPPLIER_ROLE; the user enables it explicitly)
    m.supply(erin, "LINK", 1_000 * 10**18, fund=True)
    assert m.get_user_account_data(erin).total_collateral_base == 0
    assert m.borrow(erin, "USDC", 10**6, check=False).reason == "34"   # COLLATERAL_BALANCE_IS_ZERO
    m.set_collateral(erin, "LINK", True)
    assert m.get_user_account_data(erin).total_collateral_base == 1_000 * 15 * 10**8
    assert m.borrow(erin, "WETH", 10**17, check=False).reason == "60"  # ASSET_NOT_BORROWABLE_IN_ISOLATION
    m.borrow(erin, "USDC", 5_000 * 10**6)
    assert m.reserve_data("LINK")["isolationModeTotalDebt"] == 5_000_00      # 2 decimals
    # a user with no key, from new_user()
    frank = m.new_user()
    m.supply(frank, "WETH", 10**18, fund=True)
    m.repay(erin, "USDC", 1_000 * 10**6)
    assert m.reserve_data("LINK")["isolationModeTotalDebt"] == 4_000_00
    bal = m.balances(frank, "WETH")
    assert bal.a_token == 10**18 and bal.underlying == 0
    # stable-rate debt (still present in v3.0.2; DAI has it enabled)
    m.borrow(frank, "DAI", 100 * 10**18, mode=1)
    assert m.stable_debt(frank, "DAI") == 100 * 10**18 and m.variable_debt(frank, "DAI") == 0
    m.advance_time(DAY)
    assert m.stable_debt(frank, "DAI") > 100 * 10**18
    m.fund(frank, "DAI", 10**18)
    m.repay(frank, "DAI", MAX_UINT256, mode=1)
    assert m.balances(frank, "DAI").stable_debt == 0
    m.withdraw(frank, "WETH", MAX_UINT256)
    assert m.balances(frank, "WETH").underlying >= 10**18
    # collateral switch: disabling the only collateral with debt outstanding is refused
    assert m.set_collateral(erin, "LINK", False, check=False).reason == "35"
