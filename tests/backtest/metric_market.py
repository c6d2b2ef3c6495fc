"""A one-borrower Aave v3 market built as an adapter state, and the in-memory replay inputs around
it, for the metrics' integration tests (counterfactual runs through :class:`backtest.engine.Replay`).

The state is what ``AaveV3Adapter.apply`` would hold after a supplier deposited USDC and the
borrower supplied 10 WETH and borrowed USDC (v3.0 rules, zero interest rates so the figures are
exact by hand). Prices come from two Chainlink-style feeds whose rounds are given per block.
"""

from __future__ import annotations

from collections.abc import Sequence

from backtest.clock import Blocks
from backtest.engine import ReplayInputs
from backtest.oracle import RefPoint, Round
from backtest.scenario import LiquidatorSpec, Market, MetricsSpec, Overrides, ReferenceSpec, Scenario, Window
from protocols.aave_v3.adapter import AaveV3Adapter
from protocols.aave_v3.configuration import ReserveConfiguration
from protocols.aave_v3.state import V3_0, AaveV3State, ReserveData, UserReserve, UserState
from protocols.fixed_point import RAY

WETH = "0x" + "e1" * 20
USDC = "0x" + "a0" * 20
FEED_WETH = "0x" + "f1" * 20
FEED_USDC = "0x" + "f2" * 20
BORROWER = "0x" + "b0" * 20
SUPPLIER = "0x" + "5a" * 20
TREASURY = "0x" + "7e" * 20
FIRST = 1_000
LAST = 1_060
T0 = 1_700_000_000
CHAIN = 31337


def market(collateral_weth: int = 10, debt_usdc: int = 17_000, supplier_usdc: int = 100_000,
           treasury_usdc: int = 0, lt: int = 8250, bonus: int = 10500) -> AaveV3State:
    """The state at the window start (balances in whole tokens; indices 1 RAY, rates 0)."""
    state = AaveV3State(rules=V3_0, pool="0x" + "90" * 20)
    specs = ((WETH, 18, 8000, lt, bonus), (USDC, 6, 7700, 7900, 10450))
    for i, (asset, dec, ltv, lt_, bonus_) in enumerate(specs):
        cfg = ReserveConfiguration(ltv=ltv, liquidation_threshold=lt_, liquidation_bonus=bonus_, decimals=dec,
                                   active=True, borrowing_enabled=True, liquidation_protocol_fee=0)
        state.add_reserve(ReserveData(
            asset=asset, id=i, configuration=cfg, last_update_timestamp=T0 - 100,
            a_token="0x" + f"a{i}" * 20, variable_debt_token="0x" + f"d{i}" * 20,
            stable_debt_token="0x" + f"c{i}" * 20, treasury=TREASURY,
            a_token_underlying_balance=10**30))
    u = 10**6
    state.users[BORROWER] = UserState(
        configuration=(1 << 1) | (1 << 2),  # WETH (id 0) as collateral, borrowing USDC (id 1)
        reserves={WETH: UserReserve(scaled_a_token_balance=collateral_weth * 10**18,
                                    a_token_previous_index=RAY),
                  USDC: UserReserve(scaled_variable_debt=debt_usdc * u, variable_debt_previous_index=RAY)})
    state.users[SUPPLIER] = UserState(configuration=1 << 3, reserves={
        USDC: UserReserve(scaled_a_token_balance=supplier_usdc * u, a_token_previous_index=RAY)})
    if treasury_usdc:
        state.users[TREASURY] = UserState(configuration=0, reserves={
            USDC: UserReserve(scaled_a_token_balance=treasury_usdc * u, a_token_previous_index=RAY)})
    r = state.reserves[USDC]
    state.reserves[USDC] = ReserveData(**{**{f: getattr(r, f) for f in r.__dataclass_fields__},
                                          "variable_debt_scaled_total_supply": debt_usdc * u})
    return state


def inputs(state: AaveV3State, weth_path: Sequence[tuple[int, int]], *, start_weth: int = 2_000,
           refs: Sequence[tuple[int, int]] = (), usdc_path: Sequence[tuple[int, int]] = ()) -> ReplayInputs:
    """Replay inputs: ``weth_path`` = (block, USD price) rounds of the WETH feed in the window
    (USDC stays at 1 unless ``usdc_path`` gives (block, answer with 8 decimals)); ``refs`` =
    (block, USD price) reference ETH/USD points (at the block's timestamp)."""
    blocks = Blocks.regular(FIRST - 1, LAST, T0 - 12)

    def rnd(feed: str, usd: int, b: int, li: int) -> Round:
        ts = blocks.timestamp(b)
        return Round(feed, usd * 10**8, 8, ts, b, li, ts)
    initial = {FEED_WETH: rnd(FEED_WETH, start_weth, FIRST - 1, 0),
               FEED_USDC: rnd(FEED_USDC, 1, FIRST - 1, 1)}
    usdc = [Round(FEED_USDC, a, 8, blocks.timestamp(b), b, 6, blocks.timestamp(b)) for b, a in usdc_path]
    rounds = sorted([rnd(FEED_WETH, p, b, 5) for b, p in weth_path] + usdc,
                    key=lambda r: (r.block_number, r.log_index))
    from fractions import Fraction

    ref_points = [RefPoint("ETH/USD", blocks.timestamp(b), Fraction(p), b) for b, p in refs]
    init_refs = {"ETH/USD": RefPoint("ETH/USD", T0 - 12, Fraction(start_weth), FIRST)} if refs else {}
    return ReplayInputs(AaveV3Adapter(), state, CHAIN, FIRST, LAST, blocks,
                        {FEED_WETH: (WETH,), FEED_USDC: (USDC,)}, rounds, initial, ref_points, init_refs)


def scenario(metrics: Sequence[str], *, delay: int = 0, overrides: Overrides | None = None,
             reference: bool = False, oracle_model: str = "protocol", wait_blocks: int = 0,
             params: dict[str, dict[str, object]] | None = None, name: str = "metrics-test") -> Scenario:
    from backtest.scenario import Finality, OracleModelSpec

    return Scenario(
        name=name, chain_id=CHAIN, mode="counterfactual", window=Window(FIRST, LAST),
        market=Market("aave_v3", "test", "aave_v3"),
        oracle=OracleModelSpec(model=oracle_model),  # type: ignore[arg-type]
        reference=ReferenceSpec({FEED_WETH: "ETH/USD"}) if reference else None,
        liquidator=LiquidatorSpec(reaction_delay_blocks=delay), overrides=overrides or Overrides(),
        finality=Finality(64, wait_blocks),
        metrics=MetricsSpec(tuple(metrics), params or {}))


class StubView:
    """A hand-driven :class:`backtest.metrics.base.View` for the metrics' unit tests: the test sets
    ``block``, ``prices``, ``reference_prices`` and the evaluations itself, then calls the hooks
    (no replay engine involved)."""

    def __init__(self, state: AaveV3State, scenario_: Scenario, prices: dict[str, int], *, block: int = FIRST,
                 ts: int = T0, ref: dict[str, int] | None = None, final_at_ingest: bool = True) -> None:
        from backtest.metrics.base import BlockInfo

        self.run_id = "bt-unit"
        self.chain_id = CHAIN
        self.mode = scenario_.mode
        self.scenario = scenario_
        self.adapter = AaveV3Adapter()
        self.state = state
        self.unit = 10**8
        self.block = BlockInfo(block, ts, 0, None, final_at_ingest)
        self.finality_depth_blocks = scenario_.finality.depth_blocks
        self.wait_blocks = scenario_.finality.wait_blocks
        self.from_block = FIRST
        self.to_block = LAST
        self.prices = prices
        self.reference_prices = ref or {}
        self.evals: dict[str, object] = {}
        self.feed_keys = {FEED_WETH: (WETH,), FEED_USDC: (USDC,)}

    def at(self, block: int, ts: int, *, final_at_ingest: bool = True) -> StubView:
        from backtest.metrics.base import BlockInfo

        self.block = BlockInfo(block, ts, 0, None, final_at_ingest)
        return self

    def health(self, user: str):  # type: ignore[no-untyped-def]
        return self.evals.get(user)

    def accounts(self):  # type: ignore[no-untyped-def]
        return iter([self.evals[u] for u in sorted(self.evals)])

    def price_keys(self, asset: str) -> tuple[str, ...]:
        return (asset,)

    def value(self, asset: str, amount: int, prices: dict[str, int] | None = None) -> int:
        p = (self.prices if prices is None else prices)[asset]
        return amount * p // 10 ** self.state.reserves[asset].configuration.decimals

    def decimals(self, asset: str) -> int:
        return self.state.reserves[asset].configuration.decimals


def health(collateral_usd: int, debt_usd: int, lt_bps: int = 8250):  # type: ignore[no-untyped-def]
    """An :class:`AccountHealth` from whole-USD figures (Aave v3 base currency, 1e8), the HF as
    ``calculateUserAccountData`` computes it (wadDiv half-up of the LT-weighted collateral)."""
    from protocols.domain import AccountHealth
    from protocols.fixed_point import percent_mul_half_up, wad_div_half_up

    c, d = collateral_usd * 10**8, debt_usd * 10**8
    ltv = percent_mul_half_up(c, lt_bps)
    hf = wad_div_half_up(ltv, d) if d else 2**256 - 1
    return AccountHealth(c, d, ltv, hf, hf < 10**18, max(0, d - ltv), 10**8)
