"""``raw.oracle_rounds`` from stored ``AnswerUpdated`` rows (``Chainlink.after_chunk_all``),
without a node: the phases are given as ``prepare`` leaves them in the run state."""

from __future__ import annotations

from pathlib import Path

from ingest.datasets.base import Source
from ingest.datasets.blocks import BLOCKS
from ingest.datasets.chainlink import ORACLE_ROUNDS, Chainlink
from ingest.deployments import Feed
from ingest.engine import IngestSummary, RunContext
from ingest.warehouse import Warehouse

CHAIN = 1
PROXY = "0x" + "aa" * 20
AGG1 = "0x" + "01" * 20
AGG2 = "0x" + "02" * 20


def _answer_table():
    return next(t.table for t in Chainlink.EVENT_TABLES if t.spec.name == "AnswerUpdated")


def _setup(tmp: Path, answers: list[tuple[str, int, int, int]]) -> Warehouse:
    """Blocks 1..40 and AnswerUpdated rows (aggregator, block, round id, answer)."""
    wh = Warehouse(tmp / "w.duckdb")
    au = _answer_table()
    wh.ensure(BLOCKS, au, ORACLE_ROUNDS)
    with wh.transaction() as con:
        for n in range(1, 41):
            con.execute("INSERT INTO raw.blocks VALUES "
                        "(?, ?, ?, ?, ?, NULL, 0, 0, '0x', 0, 'finalized', 0, 'r0')",
                        [CHAIN, n, f"0x{n:064x}", f"0x{n - 1:064x}", 1_000 + 12 * n])
        for agg, block, rid, ans in answers:
            con.execute(
                f"INSERT INTO {au.fqn} (chain_id, block_number, block_hash, tx_hash, tx_index, "
                "log_index, address, role, source, current, round_id, updated_at, run_id) "
                "VALUES (?, ?, ?, ?, 0, 0, ?, 'aggregator', ?, ?, ?, ?, 'r0')",
                [CHAIN, block, f"0x{block:064x}", "0x" + "ab" * 32, agg, PROXY, ans, rid,
                 1_000 + 12 * block])
    return wh


def _rounds(wh: Warehouse, phases: list[tuple[int, str, int | None]]) -> list[tuple]:
    feed = Feed("ETH / USD", CHAIN, PROXY, 8, 1)
    src = Source("chainlink", PROXY, 1, feed)
    ctx = RunContext(wh, None, CHAIN, "r1", 1, IngestSummary("r1", CHAIN, 1, 40, "head"))  # type: ignore[arg-type]
    ctx.state[("chainlink", PROXY)] = (phases, 8)
    with wh.transaction():
        Chainlink().after_chunk_all(ctx, [src], 1, 40)
    return wh.con.execute("SELECT block_number, aggregator, phase_id, proxy_round_id, answer "
                          "FROM raw.oracle_rounds ORDER BY block_number, log_index").fetchall()


def test_rounds_of_an_aggregator_outside_its_phase_are_not_the_proxys(tmp_path: Path) -> None:
    """Phase 1 (AGG1) from block 1, phase 2 (AGG2) from block 20. AGG2 transmitted before it
    was confirmed (block 10: it must have an answer before the switch) and AGG1 went on after
    it (block 25): neither answer is what the proxy reported at that block. They were stored
    as the feed's rounds, interleaving two aggregators (fails before)."""
    wh = _setup(tmp_path, [(AGG1, 5, 1, 100), (AGG2, 10, 1, 900), (AGG1, 15, 2, 101),
                           (AGG2, 22, 2, 901), (AGG1, 25, 3, 102), (AGG2, 28, 3, 902)])
    got = _rounds(wh, [(1, AGG1, 1), (2, AGG2, 20)])
    assert got == [(5, AGG1, 1, (1 << 64) | 1, 100), (15, AGG1, 1, (1 << 64) | 2, 101),
                   (22, AGG2, 2, (2 << 64) | 2, 901), (28, AGG2, 2, (2 << 64) | 3, 902)]
    wh.close()


def test_an_aggregator_in_two_phases_gives_each_round_once(tmp_path: Path) -> None:
    """AGG1 is phase 1 and again phase 3: each of its rounds belongs to the phase whose block
    range holds it (before: one row per phase for every round, duplicates)."""
    wh = _setup(tmp_path, [(AGG1, 5, 1, 100), (AGG2, 22, 1, 900), (AGG1, 35, 2, 101)])
    got = _rounds(wh, [(1, AGG1, 1), (2, AGG2, 20), (3, AGG1, 30)])
    assert got == [(5, AGG1, 1, (1 << 64) | 1, 100), (22, AGG2, 2, (2 << 64) | 1, 900),
                   (35, AGG1, 3, (3 << 64) | 2, 101)]
    wh.close()


def test_unknown_phase_start_keeps_every_round(tmp_path: Path) -> None:
    """Without switch blocks (a node without historical state) nothing can be excluded."""
    wh = _setup(tmp_path, [(AGG1, 5, 1, 100), (AGG2, 10, 1, 900), (AGG1, 25, 3, 102)])
    got = _rounds(wh, [(1, AGG1, None), (2, AGG2, None)])
    assert [r[0] for r in got] == [5, 10, 25]
    wh.close()


def test_an_updated_at_beyond_64_bits_is_a_typed_error(tmp_path: Path) -> None:
    """updatedAt is a uint256 in the event: one that is no unix time (> 2^64 - 1) failed the cast
    with DuckDB's own ConversionException (no block, no log index, not an ingest error); a round
    id above 64 bits is still named as such. Nothing is written."""
    import pytest

    from ingest.errors import DecodeError

    for rid, upd, field in ((1, 2**64, "updated_at"), (2**64, 5, "round_id")):
        sub = tmp_path / field
        sub.mkdir()
        wh = _setup(sub, [(AGG1, 5, 1, 100)])
        wh.con.execute("UPDATE raw.chainlink_answer_updated SET updated_at = ?::UHUGEINT, "
                       "round_id = ?::UHUGEINT", [str(upd), str(rid)])
        with pytest.raises(DecodeError, match=rf"block 5.*{field}|{field}.*block 5"):
            _rounds(wh, [(1, AGG1, 1)])
        assert wh.con.execute("SELECT count(*) FROM raw.oracle_rounds").fetchall() == [(0,)]
        wh.close()


class _BareAggregatorNode:
    """eth_call answers of a bare aggregator (no phaseId()) whose decimals() is 8."""

    def call(self, method: str, params: list) -> str:
        from ingest.datasets.chainlink import SEL_DECIMALS, SEL_PHASE_ID
        assert method == "eth_call", method
        data = params[0]["data"]
        if data == SEL_PHASE_ID:
            return "0x"  # no such function: not a proxy
        assert data == SEL_DECIMALS, data
        return "0x" + (8).to_bytes(32, "big").hex()


def test_declared_decimals_of_a_bare_aggregator_are_checked_against_the_chain(tmp_path: Path
                                                                              ) -> None:
    """A feed that is a bare aggregator took its declared decimals on trust (a proxy's are
    checked): declared 18 for an 8-decimal aggregator silently scaled its answers (answer_f64,
    reference answers) by 10**10. Now the chain's decimals win, with a warning, as for a proxy
    (fails before)."""
    from ingest.datasets.chainlink import ORACLE_FEEDS, ORACLE_PHASES

    wh = Warehouse(tmp_path / "w.duckdb")
    wh.ensure(ORACLE_FEEDS, ORACLE_PHASES)
    feed = Feed("ETH / USD", CHAIN, AGG1, 18, 1)
    summary = IngestSummary("r1", CHAIN, 1, 40, "head")
    ctx = RunContext(wh, _BareAggregatorNode(), CHAIN, "r1", 1, summary)  # type: ignore[arg-type]
    Chainlink().prepare(ctx, Source("chainlink", AGG1, 1, feed), 40)
    assert ctx.state[("chainlink", AGG1)] == ([(0, AGG1, 1)], 8)
    assert any("declared decimals 18, chain says 8" in w for w in summary.warnings)
    assert wh.con.execute("SELECT decimals FROM raw.oracle_feeds").fetchall() == [(8,)]
    wh.close()
