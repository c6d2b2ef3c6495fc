"""``raw.blocks``: every block header in the ingested ranges — the time axis and the hash chain.

Every other dataset's logs are checked against these hashes, and reorg detection compares them
with the node on every run. Headers come from batched ``eth_getBlockByNumber(n, false)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from ..errors import BrokenChainError, ChainDataError, DecodeError
from ..schema import Column, Table, asked_sha256, register_table
from ..warehouse import fetch_one, unregister

if TYPE_CHECKING:
    from ..rpc import JsonRpcClient

__all__ = ["BLOCKS", "fetch_blocks", "write_blocks", "blocks_asked_sha256"]

NAME = "blocks"

BLOCKS = register_table(Table(
    "raw", "blocks", "One row per block header in every ingested range (contiguous per "
    "checkpoint interval). The hash chain used for reorg detection and the clock of the replay.",
    (
        Column("chain_id", "UBIGINT", "EIP-155 chain id", False),
        Column("number", "UBIGINT", "block height", False),
        Column("hash", "VARCHAR", "block hash, 0x-hex", False),
        Column("parent_hash", "VARCHAR", "parent block hash, 0x-hex", False),
        Column("timestamp_ts", "UBIGINT", "block timestamp, unix seconds", False),
        Column("base_fee_per_gas_wei", "UHUGEINT", "EIP-1559 base fee in wei (NULL before London)"),
        Column("gas_used", "UBIGINT", "gas used by the block", False),
        Column("gas_limit", "UBIGINT", "block gas limit", False),
        Column("miner", "VARCHAR", "fee recipient, lower-case 0x-hex", False),
        Column("tx_count", "UINTEGER", "number of transactions", False),
        Column("finality_at_ingest", "VARCHAR", "'finalized' if at or below the node's finalized "
               "block (without one: head minus 64) when ingested, or when a later ingest run found "
               "it so after re-verifying the stored hash chain; else 'unfinalized'", False),
        Column("confirmations_at_ingest", "UBIGINT", "head height minus this height when ingested", False),
        Column("run_id", "VARCHAR", "ingest run that wrote the row", False),
    ),
    "ingest.datasets.blocks", ("chain_id", "number")))



def blocks_asked_sha256() -> str:
    """The fingerprint recorded with the ``blocks`` dataset's covered intervals (no logs asked:
    the ingest format and ``raw.blocks``'s columns)."""
    return asked_sha256(NAME, {}, (BLOCKS,))


_SCHEMA = pa.schema([(k, pa.string()) for k in (
    "number", "hash", "parentHash", "timestamp", "baseFeePerGas", "gasUsed", "gasLimit", "miner")]
    + [("tx_count", pa.int64())])


def fetch_blocks(rpc: JsonRpcClient, a: int, b: int) -> list[dict[str, Any]]:
    """Headers of blocks a..b (inclusive), in order; a missing block is an error."""
    res = rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in range(a, b + 1)])
    for n, blk in zip(range(a, b + 1), res, strict=True):
        if blk is None:
            raise BrokenChainError(f"the node has no block {n} (the chain is shorter than asked, "
                                   "or it was reorganized while reading)")
        got = blk.get("number") if isinstance(blk, dict) else None
        # the header of another height (a proxy's cache or a backend serving the wrong block)
        # would be stored, hash links intact, under the number asked for
        if not isinstance(got, str) or not got.startswith("0x") or _hex_int(got) != n:
            raise ChainDataError(f"asked the node for block {n}, it answered with block number {got!r}: "
                                 "a misbehaving endpoint; nothing was stored")
    return res


#: header quantities and the bits of their columns (UBIGINT, UHUGEINT for the base fee)
_QUANTITIES = (("number", 64), ("timestamp", 64), ("gasUsed", 64), ("gasLimit", 64),
               ("baseFeePerGas", 128))


def _hex_int(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None


def write_blocks(con: duckdb.DuckDBPyConnection, blocks: Sequence[dict[str, Any]], *,
                 chain_id: int, run_id: str, final_upto: int, head: int) -> None:
    """Insert headers after checking numbering and hash links (inside the chunk transaction)."""
    if not blocks:
        return
    for i, blk in enumerate(blocks):
        for k in ("number", "hash", "parentHash", "timestamp", "gasUsed", "gasLimit", "miner"):
            if not isinstance(blk.get(k), str) or not blk[k].startswith("0x"):
                raise DecodeError(f"block header field {k} missing or not 0x-hex",
                                  block_number=_num(blk), field=k)
        # quantities checked here: a failed cast in the INSERT would abort the transaction with
        # an untyped DuckDB error naming neither block nor field
        for k, bits in _QUANTITIES:
            v = blk.get(k)
            if v is None and k == "baseFeePerGas":
                continue
            q = _hex_int(v) if isinstance(v, str) and v.startswith("0x") else None
            if q is None or not 0 <= q < 2 ** bits:
                raise DecodeError(f"block header field {k} is not a {bits}-bit 0x-hex quantity: "
                                  f"{str(v)[:80]!r}", block_number=_num(blk), field=k)
        if i and blk["parentHash"].lower() != blocks[i - 1]["hash"].lower():
            raise BrokenChainError(f"block {int(blk['number'], 16)} parent {blk['parentHash']} is "
                                   f"not block {int(blocks[i - 1]['number'], 16)} "
                                   f"{blocks[i - 1]['hash']}: reorganized while reading")
        if i and int(blk["number"], 16) != int(blocks[i - 1]["number"], 16) + 1:
            raise DecodeError("block numbers are not consecutive", block_number=_num(blk),
                              field="number")
    first, last = int(blocks[0]["number"], 16), int(blocks[-1]["number"], 16)
    below = fetch_one(con.execute("SELECT hash FROM raw.blocks WHERE chain_id=? AND number=?",
                        [chain_id, first - 1]))
    if below and below[0] != blocks[0]["parentHash"].lower():
        raise BrokenChainError(f"block {first} does not link to stored block {first - 1} "
                               f"({below[0]}): the chain was reorganized")
    above = fetch_one(con.execute("SELECT parent_hash FROM raw.blocks WHERE chain_id=? AND number=?",
                        [chain_id, last + 1]))
    if above and above[0] != blocks[-1]["hash"].lower():
        raise BrokenChainError(f"stored block {last + 1} does not link to block {last}: "
                               "the chain was reorganized")
    tbl = pa.Table.from_arrays(
        [pa.array([blk.get(k) for blk in blocks], pa.string()) for k in _SCHEMA.names[:-1]]
        + [pa.array([len(blk.get("transactions") or []) for blk in blocks], pa.int64())],
        schema=_SCHEMA)
    con.register("_stage_blocks", tbl)
    try:
        con.execute(
            "INSERT INTO raw.blocks SELECT ?, number::UBIGINT, lower(hash), lower(parentHash), "
            "timestamp::UBIGINT, baseFeePerGas::UHUGEINT, gasUsed::UBIGINT, gasLimit::UBIGINT, "
            "lower(miner), tx_count, CASE WHEN number::UBIGINT <= ? THEN 'finalized' "
            "ELSE 'unfinalized' END, ? - number::UBIGINT, ? FROM _stage_blocks",
            [chain_id, final_upto, head, run_id])
    finally:
        unregister(con, "_stage_blocks")


def _num(blk: dict[str, Any]) -> int | None:
    try:
        return int(blk.get("number"), 16)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
