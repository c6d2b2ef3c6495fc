"""Real Aave v2 accounts through the adapter's own health computation.

* ``credprotocol-aave-v2-hf-sample`` (75 snapshots of one mainnet account, 2021-01 → 2022-06):
  each row's per-reserve aToken / variable / stable balances (token units, floats), ETH prices
  and liquidation thresholds are put into an :class:`AaveV2State` (one reserve per asset the row
  touches, 18-decimal units, prices in ETH wei), and ``AaveV2Adapter.account`` must give the
  row's ``total_collateral_eth``, ``total_debt_eth`` and ``HF``. Precision (PROVENANCE.md): the
  numbers are exported floats with 10–16 significant digits and the authors' HF is
  ``sum(collateral_i * LT_i) / debt`` in floating point, consistent with its own columns to
  3.1e-6 relative (the worst rows are HFs ≈ 1e-4 printed with few digits). The contract
  instead floors the average threshold to whole basis points (``avgLT = floor(sum(v_i*LT_i) /
  total)``) before ``percentMul``: that alone moves the HF by up to ``1 / avgLT_bps`` relative
  (1.2e-4 at 82.5 %). So the HF must agree within ``1/avgLT + 5e-6`` relative, the
  threshold-weighted collateral (``liquidation_threshold_value`` against
  ``sum_total_collateral_eth_x_LT``) likewise, and the totals within 1e-9 relative (their printed
  digits).
* ``bhemen-aave-data`` (10 mainnet borrowers ending in bad debt): the rows carry
  ``getUserAccountData``'s ETH totals (exact wei, exported as floats) and an HF rounded to 2
  decimals, but no thresholds. For the four single-collateral users (DAI, DAI, WETH, USDC) the
  average threshold is that asset's, so one integer threshold must reproduce every row's HF
  through the adapter (a state with the collateral and the debt as ETH-valued reserves) to the
  2 printed decimals (within 0.0051: half a unit of the last printed digit, plus a hair for
  ties in the float export); the ones found must include the asset's mainnet value (DAI 80 %,
  WETH 82.5 %, USDC 88 %, see ``SINGLE_COLLATERAL``). For all ten, the last row is evaluated
  twice: with ``getUserAccountData``'s totals, and with the per-asset balances and their
  (CoinGecko USD) prices: in both the adapter's debt value exceeds its collateral value, i.e.
  bad debt.
"""

from __future__ import annotations

import csv
from decimal import Decimal, localcontext
from decimal import Decimal as D
from pathlib import Path

import pytest

from protocols.aave_v2 import AaveV2Adapter, AaveV2State, ReserveConfiguration, ReserveData, UserReserve
from protocols.aave_v2.state import UserState
from protocols.fixed_point import WAD
from tests.realdata import REAL_DATA

ADAPTER = AaveV2Adapter()
CRED = REAL_DATA / "credprotocol-aave-v2-hf-sample" / "0x01acb3804ba9c42111c6e9c127831eb486ca1ac7.csv"
BHEMEN = REAL_DATA / "bhemen-aave-data" / "aave_user_details_v2"
USER = "0x" + "ab" * 20


def _require(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"real data not found: {path}")


def _wei(text: str, scale: int = WAD) -> int:
    """A printed decimal (token units or ETH) to integer base units, exactly as printed."""
    return int(Decimal(text) * scale)


def _state(positions: dict[str, tuple[int, int, int, int, int]]) -> AaveV2State:
    """A state with one 18-decimal reserve per asset: ``asset -> (LT bps, price, collateral,
    variable debt, stable debt)`` (indices RAY, so scaled balances are the balances)."""
    state = AaveV2State()
    config = 0
    reserves: dict[str, UserReserve] = {}
    for i, (asset, (lt, _, coll, var, stable)) in enumerate(sorted(positions.items())):
        state.add_reserve(
            ReserveData(
                asset=asset,
                id=i,
                last_update_timestamp=1,
                configuration=ReserveConfiguration(
                    ltv=lt,
                    liquidation_threshold=lt,
                    liquidation_bonus=10500 if lt else 0,
                    decimals=18,
                    active=True,
                ),
            )
        )
        reserves[asset] = UserReserve(
            scaled_a_token_balance=coll,
            scaled_variable_debt=var,
            stable_debt_principal=stable,
            stable_debt_timestamp=1 if stable else 0,
        )
        if coll and lt:
            config |= 1 << (2 * i + 1)
        if var or stable:
            config |= 1 << (2 * i)
    state.users[USER] = UserState(config, reserves)
    return state


def _account(positions: dict[str, tuple[int, int, int, int, int]]):  # type: ignore[no-untyped-def]
    prices = {a: p[1] for a, p in positions.items()}
    return ADAPTER.account(_state(positions), USER, prices, 1)


def _addr(sym: str) -> str:
    return "0x" + sym.encode().hex().rjust(40, "0")[:40]


def test_credprotocol_health_factors_reproduced() -> None:
    _require(CRED)
    with open(CRED, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 75
    syms = [k[: -len("_LiqThreshold")] for k in rows[0] if k.endswith("_LiqThreshold")]
    checked = 0
    with localcontext() as ctx:
        ctx.prec = 100  # exact products of the printed decimals
        for row in rows:
            where = f"block {row['block_height']}"
            positions = {}
            parts = {"coll": D(0), "lt": D(0), "debt": D(0)}  # the file's own per-reserve columns, exactly
            for s in syms:
                coll, var, stable = (row[k] for k in (f"a{s}_balance", f"variabledebt{s}", f"stabledebt{s}"))
                if D(coll) or D(var) or D(stable):
                    lt, price = D(row[f"{s}_LiqThreshold"]), D(row[f"{s}_eth"])
                    positions[_addr(s)] = (
                        int(lt * 10_000),
                        _wei(row[f"{s}_eth"]),
                        _wei(coll),
                        _wei(var),
                        _wei(stable),
                    )
                    if lt:
                        parts["coll"] += D(coll) * price
                        parts["lt"] += D(coll) * price * lt
                    parts["debt"] += (D(var) + D(stable)) * price
            h = _account(positions)
            # integer ETH wei, one floor per reserve: within a few wei of the exact sums
            slack = len(positions) + 2
            assert abs(h.collateral_value - int(parts["coll"] * WAD)) <= slack, where
            assert abs(h.debt_value - int(parts["debt"] * WAD)) <= slack, where
            if row["HF"] == "inf":
                assert h.debt_value == 0 and not h.liquidatable, where
                continue
            # the file's HF is its *totals'* ratio; its totals stray from its parts by a measured amount
            lt_total, debt_total = D(row["sum_total_collateral_eth_x_LT"]), D(row["total_debt_eth"])
            stray = abs(parts["lt"] - lt_total) / lt_total + abs(parts["debt"] - debt_total) / debt_total
            avg_lt = h.liquidation_threshold_value * 10_000 // h.collateral_value
            tolerance = D(1) / avg_lt + stray + D("5e-6")
            hf_file = D(row["HF"])
            rel = abs(D(h.health_factor_wad) / WAD - hf_file) / hf_file
            assert rel <= tolerance, (
                f"{where}: HF adapter {h.health_factor_wad / WAD} file {hf_file} ({rel:.2e})"
            )
            # the contract's threshold value: percentMul(total, floor(avgLT)), at most 1 bp below the parts'
            exact_lt = int(parts["lt"] * WAD)
            assert (
                exact_lt - h.collateral_value // 10_000 - slack
                <= h.liquidation_threshold_value
                <= exact_lt + slack
            )
            assert h.liquidatable == (h.health_factor_wad < WAD), where
            checked += 1
    assert checked == 74


# ----- bhemen -----

#: Aave v2 mainnet LT (bps) during each file's dates: WETH 82.5 % as in the credprotocol sample's
#: ``weth_LiqThreshold`` for 2021 (independent data); DAI 80 % (launch value) and USDC 88 % (May 2022,
#: after its 2021 raise from 85 %) from protocol knowledge, not from these files
SINGLE_COLLATERAL = {"DAI": 8000, "WETH": 8250, "USDC": 8800}


def _bhemen(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _hf_from_totals(collateral: int, debt: int, lt: int) -> int:
    eth = "0x" + "ee" * 20
    coll = "0x" + "cc" * 20
    return _account({coll: (lt, WAD, collateral, 0, 0), eth: (0, WAD, 0, debt, 0)}).health_factor_wad


def test_bhemen_files_present() -> None:
    _require(BHEMEN)
    assert len(list(BHEMEN.glob("*_details_v2.csv"))) == 10


@pytest.mark.parametrize(
    "path", sorted(BHEMEN.glob("*_details_v2.csv")) if BHEMEN.exists() else [], ids=lambda p: p.name[:10]
)
def test_bhemen_user_ends_in_bad_debt(path: Path) -> None:
    rows = _bhemen(path)
    last = rows[-1]
    # 1. getUserAccountData's totals: collateral gone, debt left
    coll, debt = int(Decimal(last["totalCollateral"])), int(Decimal(last["totalDebt"]))
    h = _account({"0x" + "cc" * 20: (8000, WAD, coll, 0, 0), "0x" + "ee" * 20: (0, WAD, 0, debt, 0)})
    assert h.debt_value > h.collateral_value and h.bad_debt_value == debt and h.liquidatable
    assert Decimal(last["healthFactor"]) == 0 and h.health_factor_wad == 0
    # 2. the per-asset balances at their own (USD) prices: debt worth more than collateral
    syms = sorted({k.rsplit("_", 1)[0] for k in last if k.endswith(("_collateral", "_debt"))})
    positions = {}
    for s in syms:
        c = int(Decimal(last.get(f"{s}_collateral") or 0))
        d = int(Decimal(last.get(f"{s}_debt") or 0))
        price = last.get(f"{s}_USD_price") or "0"
        if c or d:
            positions[_addr(s)] = (8000, _wei(price, 10**8), c, d, 0)  # raw units; price per 1e18 units
    # token decimals differ (USDC 6, WBTC 8): value = raw * price / 10**dec
    decimals = {"USDC": 6, "USDT": 6, "GUSD": 2, "WBTC": 8, "UST": 6}
    scaled = {
        a: (lt, p * 10 ** (18 - decimals.get(_sym(a, syms), 18)), c, d, s)
        for a, (lt, p, c, d, s) in positions.items()
    }
    h2 = _account(scaled)
    assert h2.debt_value > h2.collateral_value, f"{path.name}: {h2}"


def _sym(address: str, syms: list[str]) -> str:
    return next(s for s in syms if _addr(s) == address)


@pytest.mark.parametrize(
    "name,asset",
    [("0x4cBA0E53", "DAI"), ("0xFB69153a", "DAI"), ("0x60F9c858", "WETH"), ("0x5e932E41", "USDC")],
)
def test_bhemen_single_collateral_health_factors(name: str, asset: str) -> None:
    _require(BHEMEN)
    (path,) = BHEMEN.glob(f"{name}*_details_v2.csv")
    rows = [r for r in _bhemen(path) if Decimal(r["totalDebt"]) > 0 and Decimal(r["totalCollateral"]) > 0]
    assert len(rows) >= 10
    data = [
        (int(Decimal(r["totalCollateral"])), int(Decimal(r["totalDebt"])), Decimal(r["healthFactor"]))
        for r in rows
    ]

    def fits(lt: int) -> bool:
        return all(
            abs(Decimal(_hf_from_totals(c, d, lt)) / WAD - hf) <= Decimal("0.0051") for c, d, hf in data
        )

    found = [lt for lt in range(SINGLE_COLLATERAL[asset] - 300, SINGLE_COLLATERAL[asset] + 301) if fits(lt)]
    assert SINGLE_COLLATERAL[asset] in found, (asset, found[:5], found[-5:])
    assert len(found) < 60  # the 2-decimal HFs pin the threshold to well under 1 %
