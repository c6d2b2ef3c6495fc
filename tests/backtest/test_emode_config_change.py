"""An asset leaving an e-mode category whose price source is set (v3.0-3.1) must re-evaluate the
category's borrowers: they are exposed to the price source's key only, and the configurator event
names the asset, so the at-risk index found only the asset's plain holders and never the e-mode
borrower the change made liquidatable (the naive replay liquidates it; fails before the fix in
``Replay._on_event``). Found by an audit helper's repro."""
import dataclasses

from backtest.api import run_inputs
from backtest.oracle import Round
from protocols.aave_v3.state import EModeCategory
from protocols.domain import EventRef, ProtocolEvent
from tests.backtest.markets import COLL, DEBT, FROM, T0, inputs, market, scenario, user

CONFIGURATOR = "0x" + "cf" * 20
PSRC = "0x" + "5e" * 20     # the category's price source (an AaveOracle asset key)
FEED_P = "0x" + "f5" * 20
SIG = "EModeAssetCategoryChanged(address,uint8,uint8)"


def _inputs():  # type: ignore[no-untyped-def]
    # user 0: plain account, 1000 COLL against $100 (keys COLL, DEBT); user 1: e-mode 1 (LT 97 %,
    # price source PSRC at $1), 1000 COLL against $900 (key PSRC only): HF 1.08 in e-mode, 0.89
    # once COLL leaves category 1 at block FROM + 2
    book = market(8000, 10500, [(1000 * 10**18, 100 * 10**6), (1000 * 10**18, 900 * 10**6)])
    st = book.state
    st.emode_categories[1] = EModeCategory(9500, 9700, 10100, PSRC, "usd")
    for a in (COLL, DEBT):
        st.reserves[a] = dataclasses.replace(
            st.reserves[a], configuration=dataclasses.replace(st.reserves[a].configuration, emode_category=1))
    st.users[user(1)] = dataclasses.replace(st.users[user(1)], emode_category=1)
    path = [10**8, 10**8, 10**8 + 10**4, 10**8 + 2 * 10**4, 10**8 + 3 * 10**4]
    inp = inputs(book, path, to_block=FROM + 8)
    init = {**inp.initial_rounds, FEED_P: Round(FEED_P, 10**8, 8, T0, FROM - 1, 2, T0)}
    b = FROM + 2
    ev = ProtocolEvent("EModeAssetCategoryChanged", SIG, CONFIGURATOR, "pool_configurator",
                       {"asset": COLL, "old_category_id": 1, "new_category_id": 0},
                       EventRef(b, 5, "0x" + "ab" * 32, T0 + 12 * (b - FROM + 1)))
    return dataclasses.replace(inp, initial_rounds=init, feed_keys={**inp.feed_keys, FEED_P: (PSRC,)},
                               events=[ev])


def test_an_asset_leaving_an_emode_category_reevaluates_its_borrowers() -> None:
    extra = "\n[liquidator]\nreaction_delay_blocks = 0\ngas_units = 0\nmin_profit_usd = 0\n"
    out = [run_inputs(scenario("historical", extra=extra, to_block=FROM + 8), _inputs(), naive=nv)
           for nv in (False, True)]
    assert [x.block_number for x in out[1].output.liquidations] == [FROM + 3]
    for t, rows in out[0].output.tables.items():
        if t.name != "runs":
            assert rows == out[1].output.tables[t], t.fqn
