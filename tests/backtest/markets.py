"""Small Aave v3 markets built in Python (the adapter's own state types, as ``adapter.sample()``
does), fed to the engine through the in-memory path (:class:`backtest.engine.ReplayInputs`), so
property tests can run thousands of replays. The rules applied are the real ported ones
(:mod:`protocols.aave_v3`); only the starting positions are constructed instead of replayed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from backtest.clock import Blocks
from backtest.engine import ReplayInputs
from backtest.oracle import RefPoint, Round
from backtest.scenario import Scenario, parse_scenario
from protocols.aave_v3 import AaveV3Adapter
from protocols.aave_v3.configuration import ReserveConfiguration
from protocols.aave_v3.state import V3_0, AaveV3State, ReserveData, UserReserve, UserState
from protocols.fixed_point import RAY

ADAPTER = AaveV3Adapter()
COLL = "0x" + "c0" * 20   # collateral asset (18 decimals)
DEBT = "0x" + "d0" * 20   # debt asset (6 decimals, $1)
FEED_C = "0x" + "fc" * 20
FEED_D = "0x" + "fd" * 20
POOL = "0x" + "99" * 20
T0 = 1_700_000_000
FROM = 1_000


def user(i: int) -> str:
    return "0x" + f"{i + 1:040x}"


@dataclass
class Book:
    """Starting market: one collateral and one debt reserve, users with (collateral wei, debt units)."""

    state: AaveV3State
    users: tuple[str, ...]


def market(lt: int, bonus: int, positions: Sequence[tuple[int, int]], *, fee: int = 0,
           borrow_rate: int = 0, index: int = RAY) -> Book:
    st = AaveV3State(rules=V3_0, pool=POOL)
    for i, (asset, dec, ltv, lt_, bonus_) in enumerate(((COLL, 18, max(0, lt - 500), lt, bonus),
                                                         (DEBT, 6, 0, 0, 0))):
        cfg = ReserveConfiguration(ltv=ltv, liquidation_threshold=lt_, liquidation_bonus=bonus_, decimals=dec,
                                   active=True, borrowing_enabled=True, liquidation_protocol_fee=fee)
        st.add_reserve(ReserveData(
            asset=asset, id=i, configuration=cfg, liquidity_index=RAY, variable_borrow_index=index,
            current_variable_borrow_rate=borrow_rate if asset == DEBT else 0, last_update_timestamp=T0,
            a_token="0x" + f"{0xa0 + i:02x}" * 20, variable_debt_token="0x" + f"{0xb0 + i:02x}" * 20,
            stable_debt_token="0x" + f"{0xe0 + i:02x}" * 20, treasury="0x" + "77" * 20,
            a_token_underlying_balance=10**30))
    users = []
    for k, (c, d) in enumerate(positions):
        u = user(k)
        users.append(u)
        reserves = {COLL: UserReserve(scaled_a_token_balance=c, a_token_previous_index=RAY),
                    DEBT: UserReserve(scaled_variable_debt=d * RAY // index,
                                      variable_debt_previous_index=index)}
        st.users[u] = UserState(configuration=(1 << 1) | (1 << 2), emode_category=0, reserves=reserves)
    total = sum(u.reserves[DEBT].scaled_variable_debt for u in st.users.values())
    from dataclasses import replace

    st.reserves[DEBT] = replace(st.reserves[DEBT], variable_debt_scaled_total_supply=total)
    return Book(st, tuple(users))


def scenario(mode: str = "counterfactual", *, extra: str = "", to_block: int = FROM + 100,
             reference: bool = False, oracle: str = "protocol") -> Scenario:
    ref = f'\n[reference]\n[reference.pairs]\n"{FEED_C}" = "COLL/USD"\n' if reference else ""
    text = (f'name = "t"\nchain_id = 31337\nmode = "{mode}"\n[window]\nfrom_block = {FROM}\n'
            f'to_block = {to_block}\n[market]\nprotocol = "aave_v3"\nsource = "m"\n'
            f'[oracle]\nmodel = "{oracle}"\n{ref}{extra}')
    return parse_scenario(text, "<test>")


def inputs(book: Book, path: Sequence[int], *, to_block: int | None = None, refs: Sequence[Fraction] = (),
           ref_start: Fraction | None = None) -> ReplayInputs:
    """Collateral price ``path[i]`` (USD 8 decimals) at block ``FROM + 1 + i``; the debt at $1."""
    last = to_block if to_block is not None else FROM + len(path) + 1
    blocks = Blocks.regular(FROM - 1, last, T0)
    rounds = [Round(FEED_C, p, 8, T0 + 12 * (i + 2), FROM + 1 + i, 0, T0 + 12 * (i + 2))
              for i, p in enumerate(path)]
    init = {FEED_C: Round(FEED_C, path[0], 8, T0, FROM - 1, 0, T0),
            FEED_D: Round(FEED_D, 10**8, 8, T0, FROM - 1, 1, T0)}
    rp = [RefPoint("COLL/USD", T0 + 12 * (i + 2), r, FROM + 1 + i) for i, r in enumerate(refs)]
    init_refs = {"COLL/USD": RefPoint("COLL/USD", T0, ref_start, FROM - 1)} if ref_start is not None else {}
    return ReplayInputs(ADAPTER, book.state, 31337, FROM, last, blocks, {FEED_C: (COLL,), FEED_D: (DEBT,)},
                        rounds, init, rp, init_refs)
