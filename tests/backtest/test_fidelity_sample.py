"""Fidelity on a real node (issue 4's first check): the historical replay of the bundled sample
reproduces every on-chain ``LiquidationCall`` — who, when, and how much.

The sample (:mod:`ingest.sample`, ``data/sample.duckdb``) is a real Aave v3.0.2 market (npm
bytecode) on anvil through the 2021-01-11 ETH crash: the Binance ETH-USDT path pushed through a
Chainlink-style OCR feed with the real ETH/USD rules, a seeded borrower population and on-chain
liquidator bots (:mod:`ingest.sample_bots`) whose parameters are stored in ``meta.sample``
(``bots.*``). The replay reads only the ingested ``raw.*`` tables; the liquidator model is
configured from ``bots.*`` alone. Checked:

* the model predicts exactly the observed ``(user, block)`` pairs (precision and recall 100 %);
* for every observed LiquidationCall, ``adapter.liquidate`` with the event's arguments on the
  replayed pre-transaction state gives the event's debt repaid and collateral seized exactly, and
  its protocol fee is the aToken ``BalanceTransfer`` to the treasury in the same transaction
  (which carries ``fee.rayDiv(index)``: the scaled amount);
* the model's own matched predictions (its pair, ``type(uint256).max``, on the state at the top
  of the block) have the same pair and amounts as the chain.

The file read is ``$DEFICIT_SAMPLE_DB`` if set, else ``data/sample.duckdb``; if neither exists
(the file is committed, so a checkout has it) the test builds it with ``deficit sample build``'s
function on a fresh anvil (about three minutes).
"""

from __future__ import annotations

import os
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from backtest.api import run
from ingest.sample import SAMPLE_DB
from ingest.sample_tables import BOT_DECISIONS, META
from protocols.fixed_point import ray_div_half_up

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the sample (the run writes its bt rows into the file it reads)."""
    dst = tmp_path_factory.mktemp("sample") / "fidelity.duckdb"
    src = Path(os.environ.get("DEFICIT_SAMPLE_DB", SAMPLE_DB))
    if src.exists():
        shutil.copyfile(src, dst)
    else:
        from ingest.sample import build_sample

        build_sample(dst, seed=1)
    return dst


def _meta(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {str(k): str(v) for k, v in con.execute(f"SELECT key, value FROM {META.fqn}").fetchall()}
    finally:
        con.close()


def _scenario(db: Path, tmp: Path) -> Path:
    meta = _meta(db)
    # what the model implements of the bots' policy: check the sample still says the same
    assert (meta["bots.debt_to_cover"], meta["bots.slippage_bps"], meta["bots.capacity_per_block"],
            meta["bots.receive_a_token"]) == ("max_uint256", "0", "unlimited", "false"), meta
    con = duckdb.connect(str(db), read_only=True)
    try:
        first = con.execute("SELECT min(block_number) FROM raw.aave_v3_supply").fetchall()[0][0]
    finally:
        con.close()
    min_profit = Decimal(int(meta["bots.min_profit_base"])) / 10**8  # oracle base currency: USD, 8 decimals
    f = tmp / "fidelity.toml"
    f.write_text(f"""name = "sample fidelity"
chain_id = {meta["chain_id"]}
mode = "historical"
[window]
from_block = {first}
to_block = {meta["last_block"]}
[market]
protocol = "aave_v3"
dataset = "{meta["dataset"]}"
source = "{meta["deployment"]}"
rules = "3.0"
[liquidator]
reaction_delay_blocks = {meta["bots.reaction_delay_blocks"]}
gas_units = {meta["bots.gas_units"]}
priority_fee_wei = {meta["bots.priority_fee_wei"]}
gas_price_key = "{meta["reserve.WETH"]}"
min_profit_usd = {min_profit}
flash_loans = true
flash_fee_bps = 0
capacity_per_block = 0
repeat_in_block = false
[metrics]
names = ["fidelity", "liquidations"]
""")
    return f


def test_replay_reproduces_every_onchain_liquidation_of_the_sample(sample: Path, tmp_path: Path) -> None:
    res = run(_scenario(sample, tmp_path), db=sample)
    meta = _meta(sample)
    liqs = res.output.liquidations
    observed = [x for x in liqs if x.observed]
    predicted = [x for x in liqs if not x.observed]
    con = duckdb.connect(str(sample), read_only=True)
    try:
        chain = con.execute("SELECT user, block_number, log_index, tx_hash FROM raw.aave_v3_liquidation_call "
                            "ORDER BY block_number, log_index").fetchall()
        bots = con.execute(f"SELECT user, exec_block, tx_hash FROM {BOT_DECISIONS.fqn} WHERE action = "
                           "'liquidate' AND status = 'ok' ORDER BY exec_block, user").fetchall()
        fees = {(str(tx), str(f)): (int(v), int(i)) for tx, f, v, i in con.execute(
            'SELECT tx_hash, "from", value, "index" FROM raw.aave_v3_a_token_balance_transfer WHERE "to" = ?',
            [meta["treasury"]]).fetchall()}
    finally:
        con.close()
    # the replay saw every ingested LiquidationCall, and they are the bots' transactions
    assert [(o.user, o.block_number, o.log_index, o.tx_hash) for o in observed] == [
        (str(u), int(b), int(li), str(t)) for u, b, li, t in chain]
    assert sorted((str(u), int(b), str(t)) for u, b, t in bots) == sorted(
        (o.user, o.block_number, str(o.tx_hash)) for o in observed)
    assert len(observed) >= 50, "the crash must liquidate many accounts for this to mean much"

    # who and when: predictions == observations, as (user, block) multisets
    obs_keys = sorted((o.user, o.block_number) for o in observed)
    pred_keys = sorted((p.user, p.block_number) for p in predicted)
    missed = sorted(set(obs_keys) - set(pred_keys), key=lambda k: (k[1], k[0]))
    extra = sorted(set(pred_keys) - set(obs_keys), key=lambda k: (k[1], k[0]))
    assert obs_keys == pred_keys, (f"observed but not predicted (user, block): {missed}; predicted but not "
                                   f"observed: {extra}")

    # how much: the adapter on the observed arguments, and the fee through the treasury transfer
    errors = []
    for o in observed:
        p = o.predicted
        if p is None or not p.ok:
            errors.append(f"user {o.user} block {o.block_number}: predicted revert "
                          f"{p.revert_reason if p else 'none'}")
            continue
        fee_scaled, index = fees.get((str(o.tx_hash), o.user), (0, 0))
        fee_ok = (p.protocol_fee == 0 and fee_scaled == 0) or (
            index > 0 and ray_div_half_up(p.protocol_fee, index) == fee_scaled)
        if (p.debt_repaid, p.collateral_seized) != (o.debt_repaid, o.collateral_seized) or not fee_ok:
            errors.append(f"user {o.user} block {o.block_number}: debt repaid observed {o.debt_repaid} "
                          f"predicted {p.debt_repaid}; collateral seized observed {o.collateral_seized} "
                          f"predicted {p.collateral_seized}; protocol fee predicted {p.protocol_fee} "
                          f"(scaled {fee_scaled} at index {index} on chain)")
    assert not errors, "\n".join(errors)
    assert sum(1 for o in observed if o.protocol_fee > 0) == len(observed)  # 10 % of the bonus, every time

    # the model's own liquidations are the chain's: same pair, same amounts
    by_key = {(o.user, o.block_number): o for o in observed}
    for q in predicted:
        o = by_key[(q.user, q.block_number)]
        assert (q.collateral_asset, q.debt_asset, q.debt_repaid, q.collateral_seized, q.protocol_fee) == (
            o.collateral_asset, o.debt_asset, o.debt_repaid, o.collateral_seized, o.protocol_fee), (
            f"user {q.user} block {q.block_number}: model {q.collateral_asset}/{q.debt_asset} repaid "
            f"{q.debt_repaid} seized {q.collateral_seized}; chain {o.collateral_asset}/{o.debt_asset} repaid "
            f"{o.debt_repaid} seized {o.collateral_seized}")

    # and the fidelity metric says the same
    f = res.summary["fidelity"]
    n = len(observed)
    assert (f["observed"], f["predicted"], f["matched"], f["precision"], f["recall"]) == (n, n, n, 1.0, 1.0)
    assert (f["amounts_compared"], f["amounts_exact"], f["predicted_reverts"]) == (n, n, 0)
    assert f["debt_repaid_mismatches"] == f["collateral_seized_mismatches"] == 0
    assert f["debt_repaid_abs_error_sum_value"] == f["collateral_seized_abs_error_sum_value"] == 0
    frames = res.frames()
    rows = frames["bt.fidelity"]
    assert rows.height == n and rows["matched"].all()


def test_a_feed_interval_read_before_its_aggregators_changed_is_refused(sample: Path, tmp_path: Path) -> None:
    """When a later ingest finds a new phase of a feed, it stamps the feed's stored intervals with
    the aggregators they were read from (meta.checkpoints.addresses_sha256, f82766a), so that the
    next ingest re-reads them: the new aggregator's rounds there (which the proxy reports from the
    switch, and the replay repeats) may be missing. The backtest checked only asked_sha256 and read
    such an interval as complete. Here the stamp is set as that ingest step sets it (an UPDATE of
    the ETH/USD feed's intervals), on a private copy of the sample; the run is refused, naming the
    feed and the re-ingest command."""
    from backtest.errors import MissingData
    from ingest.schema import addresses_sha256

    db = tmp_path / "stamped.duckdb"
    shutil.copyfile(sample, db)
    feed = _meta(db)["feed.WETH"].lower()
    con = duckdb.connect(str(db))
    try:
        con.execute("UPDATE meta.checkpoints SET addresses_sha256 = ? WHERE dataset = 'chainlink' "
                    "AND source = ?", [addresses_sha256({"aggregator": ["0x" + "ab" * 20]}), feed])
    finally:
        con.close()
    with pytest.raises(MissingData, match=rf"\(chainlink:{feed}\).*aggregators changed.*deficit ingest"):
        run(_scenario(db, tmp_path), db=db)
