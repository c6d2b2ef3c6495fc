"""Audit of the ingest run's inputs and bookkeeping against a scripted node (no chain needed):
deployments files, --from/--to times, the non-final tail, secrets in what a failed run stores."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from ingest.deployments import DeploymentSet, load_deployments
from ingest.engine import IngestRequest, resolve_block_at, run_ingest
from ingest.errors import DeploymentsFileError
from ingest.warehouse import Warehouse

CHAIN = 31337
PROXY_A = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
PROXY_B = "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6"


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "dep.toml"
    p.write_text(text)
    return p


def test_a_name_declared_twice_in_one_file_is_refused_with_its_line(tmp_path: Path) -> None:
    """Two [[feed]] entries with one name: both became sources with the same key (rows of two
    feeds under one ``source``, one checkpoint for both). The set check compared each entry
    with the names before the file only, so a duplicate inside one file passed (fails before)."""
    p = _write(tmp_path, f"""[meta]
chain_id = 1

[[feed]]
name = "ETH / USD"
chain_id = 1
proxy = "{PROXY_A}"
start_block = 1

[[feed]]
name = "ETH / USD"
chain_id = 1
proxy = "{PROXY_B}"
start_block = 1
""")
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (11, "feed[1].name"), str(e.value)
    dset = DeploymentSet()
    with pytest.raises(Exception, match="declared twice"):
        dset.extend(DeploymentSet(1, [], [f for f in _feeds(tmp_path)] * 2))


def _feeds(tmp: Path) -> list[Any]:
    (tmp / "one").mkdir(exist_ok=True)
    p = tmp / "one" / "f.toml"
    p.write_text(f'[[feed]]\nname = "X"\nchain_id = 1\nproxy = "{PROXY_A}"\nstart_block = 1\n')
    return load_deployments(p).feeds


def test_a_feed_of_another_chain_than_meta_says_is_refused(tmp_path: Path) -> None:
    """[meta] chain_id = 1 and a feed with chain_id 10: the feed was accepted and then skipped
    without a word by an ingest of chain 1 (sources are chosen by chain). A deployment with the
    same mistake was refused; the feed now is too, with its line and field (fails before)."""
    p = _write(tmp_path, f"""[meta]
chain_id = 1

[[feed]]
name = "ETH / USD"
chain_id = 10
proxy = "{PROXY_A}"
start_block = 1
""")
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (6, "feed[0].chain_id"), str(e.value)


def test_a_mixed_case_address_with_a_wrong_checksum_is_refused(tmp_path: Path) -> None:
    """A mixed-case address is an EIP-55 checksum; one with a typo (here one hex digit changed,
    case kept) was accepted and lower-cased, so the ingest read another contract's logs (none):
    silently empty. Now refused at the field; all-lower/all-upper stay accepted (fails before)."""
    bad = PROXY_A[:-1] + "8"  # ...8419 -> ...8418: the checksum no longer matches
    p = _write(tmp_path, f'[[feed]]\nname = "ETH / USD"\nchain_id = 1\nproxy = "{bad}"\n'
                         'start_block = 1\n')
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (4, "feed[0].proxy"), str(e.value)
    for ok in (PROXY_A, PROXY_A.lower(), "0x" + PROXY_A[2:].upper()):
        p = _write(tmp_path, f'[[feed]]\nname = "ETH / USD"\nchain_id = 1\nproxy = "{ok}"\n'
                             'start_block = 1\n')
        assert load_deployments(p).feeds[0].proxy == PROXY_A.lower()


def _h(n: int) -> str:
    return "0x" + f"{n:x}".rjust(64, "0")


class TimedNode:
    """Blocks 0..head, linked, with timestamps ``ts[n]``; ``finalized`` is a settable height."""

    def __init__(self, ts: list[int], finalized: int | None = None):
        self.ts, self.head, self.finalized = ts, len(ts) - 1, finalized

    def check_chain_id(self, expected: int) -> None:
        assert expected == CHAIN

    def _block(self, n: int) -> dict[str, Any] | None:
        if n > self.head:
            return None
        return {"number": hex(n), "hash": _h(n), "parentHash": _h(n - 1) if n else "0x" + "e" * 64,
                "timestamp": hex(self.ts[n]), "gasUsed": "0x0", "gasLimit": "0x1",
                "miner": "0x" + "00" * 20, "transactions": []}

    def call(self, method: str, params: list[Any]) -> Any:
        if method == "eth_blockNumber":
            return hex(self.head)
        assert method == "eth_getBlockByNumber", method
        tag = params[0]
        if tag == "finalized":
            return None if self.finalized is None else self._block(self.finalized)
        return self._block(self.head if tag == "latest" else int(tag, 16))

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        return [self.call(m, p) for m, p in calls]


def _utc(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def test_times_resolve_to_the_blocks_at_or_inside_them() -> None:
    """--to includes a block at exactly that second, and every block sharing it; --from starts
    at the first block of the second; offsets are honoured; outside the chain is an error or the
    chain's end."""
    # block n's timestamp: 1000, 1012, 1012, 1012, 1024, 1036, ...
    node = TimedNode([1000, 1012, 1012, 1012] + [1024 + 12 * k for k in range(10)])
    at = dt.datetime.fromtimestamp
    utc = dt.UTC
    assert resolve_block_at(node, at(1012, utc), first_at_or_after=False) == 3  # type: ignore[arg-type]
    assert resolve_block_at(node, at(1012, utc), first_at_or_after=True) == 1  # type: ignore[arg-type]
    assert resolve_block_at(node, at(1011, utc), first_at_or_after=False) == 0  # type: ignore[arg-type]
    assert resolve_block_at(node, at(1013, utc), first_at_or_after=True) == 4  # type: ignore[arg-type]
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert resolve_block_at(node, at(1024, plus2), first_at_or_after=False) == 4  # type: ignore[arg-type]
    assert resolve_block_at(node, at(0, utc), first_at_or_after=True) == 0  # type: ignore[arg-type]
    assert resolve_block_at(node, at(10**9, utc), first_at_or_after=False) == node.head  # type: ignore[arg-type]


def test_a_from_time_inside_a_second_does_not_take_the_block_before_it() -> None:
    """--from 00:00:12.5 means blocks at or after 12.5 s: the block at 12 s is before it. The
    time was truncated to the whole second, so that block (and every block sharing its second)
    was ingested although it lies before --from (fails before). --to 12.5 s keeps the block at
    12 s."""
    node = TimedNode([1000, 1012, 1012, 1024, 1036])
    t = dt.datetime.fromtimestamp(1012, dt.UTC) + dt.timedelta(milliseconds=500)
    assert resolve_block_at(node, t, first_at_or_after=True) == 3  # type: ignore[arg-type]
    assert resolve_block_at(node, t, first_at_or_after=False) == 2  # type: ignore[arg-type]


def test_the_non_final_tail_is_marked_final_once_a_later_run_finds_it_final(tmp_path: Path) -> None:
    """A --head run stores blocks above the node's 'finalized' as 'unfinalized'. Later the node
    finalizes them, unchanged (the run's reorg check verified their hashes). Stored blocks are not
    fetched again, so they stayed 'unfinalized' for good and every backtest over them counted
    them as non-final (BlockInfo.finalized_at_ingest, the finality metric), however old they got
    (fails before)."""
    node = TimedNode([1000 + 12 * n for n in range(30)], finalized=19)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        req = IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                            from_block=0, finality="head", endpoint_label="test")
        run_ingest(wh, node, req)  # type: ignore[arg-type]
        q = ("SELECT finality_at_ingest, min(number), max(number) FROM raw.blocks GROUP BY 1 "
             "ORDER BY 2")
        assert wh.con.execute(q).fetchall() == [("finalized", 0, 19), ("unfinalized", 20, 29)]
        node.ts += [1000 + 12 * n for n in range(30, 40)]
        node.head, node.finalized = 39, 25
        run_ingest(wh, node, IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(),  # type: ignore[arg-type]
                                           datasets=("blocks",), from_block=0,
                                           endpoint_label="test"))
        assert wh.con.execute(q).fetchall() == [("finalized", 0, 25), ("unfinalized", 26, 29)]


def test_a_key_echoed_in_a_providers_error_reaches_no_table_or_output(tmp_path: Path,
                                                                       capsys: Any) -> None:
    """A provider that quotes the API key of the URL path in its JSON-RPC error message ('invalid
    API key <key>'): the failed run stored the message, key included, in meta.runs.message (the
    terminal line was redacted, the table not) (fails before)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from ingest.cli import main

    key = "k3y0123456789abcdef0123456789abcd"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            req = json.loads(self.rfile.read(int(self.headers["content-length"])))
            first = req[0] if isinstance(req, list) else req
            body = json.dumps({"jsonrpc": "2.0", "id": first["id"], "error": {
                "code": -32600, "message": f"invalid API key {self.path.rsplit('/', 1)[-1]}",
                "data": f"see {self.path}"}}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    db = tmp_path / "w.duckdb"
    try:
        code = main(["ingest", "--rpc", f"http://127.0.0.1:{srv.server_port}/v2/{key}",
                     "--db", str(db), "--chain", str(CHAIN), "--datasets", "blocks",
                     "--from", "0", "--to", "1", "--json"])
    finally:
        srv.shutdown()
        srv.server_close()
    out = capsys.readouterr()
    assert code == 1
    assert key not in out.out + out.err
    assert "invalid API key" in out.err
    with Warehouse(db, read_only=True) as wh:
        (msg,), = wh.con.execute("SELECT message FROM meta.runs").fetchall()
    assert "invalid API key" in msg and key not in msg, msg


def test_a_second_ingest_into_the_same_file_in_this_process_stops_at_once(tmp_path: Path) -> None:
    """DuckDB's file lock only keeps other processes out: a second Warehouse on the same file in
    one process shares the database, so two ingests at once (threads, a notebook) both wrote.
    Two threads fetching blocks 5..19 at once then stored each block twice (31 rows, 16
    distinct) and two overlapping checkpoints, and one run failed with an untyped DuckDB
    TransactionException after its rows were committed. The second run now stops at once with
    WarehouseLocked, as a second process does (fails before: the nested run wrote)."""
    from ingest.errors import WarehouseLocked

    db = tmp_path / "w.duckdb"
    ts = [1000 + 12 * n for n in range(20)]
    outcome: list[str] = []

    class Node(TimedNode):
        def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
            if not outcome:  # while the first run fetches: a second ingest into the same file
                try:
                    with Warehouse(db) as wh2:
                        run_ingest(wh2, TimedNode(ts, finalized=19), IngestRequest(  # type: ignore[arg-type]
                            chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                            from_block=0, to_block=19, endpoint_label="t"))
                    outcome.append("second run wrote")
                except WarehouseLocked as e:
                    outcome.append(f"locked: {e}")
            return super().batch(calls)

    with Warehouse(db) as wh:
        s = run_ingest(wh, Node(ts, finalized=19), IngestRequest(  # type: ignore[arg-type]
            chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",), from_block=0,
            to_block=19, endpoint_label="t"))
        assert s.blocks_written == 20
        assert wh.con.execute("SELECT count(*), count(DISTINCT number) FROM raw.blocks"
                              ).fetchall() == [(20, 20)]
        assert wh.con.execute("SELECT count(*) FROM meta.runs").fetchall() == [(1,)]
    assert len(outcome) == 1 and outcome[0].startswith("locked:"), outcome
    assert "another ingest" in outcome[0] and str(db) in outcome[0]
    with Warehouse(db) as wh:  # released when the run ends
        run_ingest(wh, TimedNode(ts, finalized=19), IngestRequest(  # type: ignore[arg-type]
            chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",), from_block=0,
            to_block=19, endpoint_label="t"))


def test_redaction_masks_a_key_echoed_in_another_case_or_as_written_in_the_query() -> None:
    """A provider echoing the key upper-cased (a hex key), or a query value as written ('a+b'
    parses to 'a b'): both were printed/stored unmasked (fails before)."""
    from ingest.redact import redact_text

    hexkey = "0123456789abcdef0123456789abcdef"
    url = f"https://mainnet.infura.io/v3/{hexkey}"
    assert hexkey.upper() not in redact_text(f"project {hexkey.upper()} unknown", [url])
    url = "https://rpc.example.org/?apikey=Zk9+x/Qw%3D"
    out = redact_text("bad apikey Zk9+x/Qw%3D (Zk9 x/Qw=)", [url])
    assert "Zk9" not in out, out


def test_an_unknown_meta_key_is_refused(tmp_path: Path) -> None:
    """[meta] chainid = 10 (a typo for chain_id) was ignored: no chain for the file, so the check
    that its entries are of that chain never ran and a feed of another chain was skipped by the
    ingest without a word. Unknown [meta] keys are refused with line and field; chain_id must be
    an integer there too (fails before)."""
    p = _write(tmp_path, f"""[meta]
chain = "ethereum"
chainid = 1

[[feed]]
name = "ETH / USD"
chain_id = 10
proxy = "{PROXY_A}"
start_block = 1
""")
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (3, "meta.chainid"), str(e.value)
    p = _write(tmp_path, '[meta]\nchain = "ethereum"\nchain_id = "1"\n')
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (3, "meta.chain_id"), str(e.value)


def test_entry_lines_count_headers_with_comments_and_phases_are_checked(tmp_path: Path) -> None:
    """A '[[feed]]  # ETH' header (a comment after it, valid TOML) was not counted as an entry,
    so errors of later entries named the line of another entry (here the first feed's proxy
    line instead of the second's). An aggregator phase 'true' (a bool is an int in Python), 0 or
    declared twice was accepted (Chainlink phases are 1, 2, ...; the last declaration won)
    (fails before)."""
    p = _write(tmp_path, f"""[[feed]]  # first
name = "A"
chain_id = 1
proxy = "{PROXY_A}"
start_block = 1

[[ feed ]]  # second
name = "B"
chain_id = 1
proxy = "0x1234"
start_block = 1
""")
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (10, "feed[1].proxy"), str(e.value)
    for phases in ("true", "0", "1, 1"):
        aggs = ", ".join(f'{{phase = {x.strip()}, address = "{PROXY_B}"}}' for x in phases.split(","))
        p = _write(tmp_path, f'[[feed]]\nname = "A"\nchain_id = 1\nproxy = "{PROXY_A}"\n'
                             f'start_block = 1\naggregators = [{aggs}]\n')
        with pytest.raises(DeploymentsFileError) as e:
            load_deployments(p)
        assert (e.value.line, e.value.field) == (6, "feed[0].aggregators"), (phases, str(e.value))


def test_a_typed_staging_error_inside_the_chunk_transaction_stays_typed() -> None:
    """Inside the chunk's transaction, a failed statement aborts the transaction and DuckDB then
    refuses even ``unregister``: the ``finally: con.unregister(...)`` of the parsed-dict staging
    path (stage_arrow, the fallback after a malformed JSON answer) replaced the typed DecodeError
    (a log of a contract not asked for) with 'TransactionException: Current transaction is
    aborted', so the run failed untyped (a traceback, not an IngestError) and meta.runs.message
    lost the reason (fails before)."""
    from ingest.datasets.base import LogsBatch, stage_arrow
    from ingest.errors import DecodeError
    from tests.ingest.test_abi import ANSWER_UPDATED, _add_blocks, _con_with, _encode_log

    good = _encode_log(ANSWER_UPDATED, {"current": 5, "roundId": 1, "updatedAt": 2}, 3, 0)
    log = {**good, "address": "0x" + "22" * 20}
    con, _ = _con_with(ANSWER_UPDATED)
    _add_blocks(con, [log])
    con.execute("BEGIN TRANSACTION")
    with pytest.raises(DecodeError, match="not asked for"):
        stage_arrow(con, [LogsBatch("s", "r", 3, 3, logs=[log], addresses=(good["address"],),
                                    topic0s=(ANSWER_UPDATED.topic0,))])
    con.execute("ROLLBACK")


def test_a_header_field_out_of_range_is_a_typed_error_naming_block_and_field(tmp_path: Path) -> None:
    """A header whose gasUsed does not fit 64 bits failed the INSERT inside the chunk's
    transaction, and the cleanup's unregister then raised 'TransactionException: Current
    transaction is aborted' instead: untyped, naming neither the block nor the field (fails
    before)."""
    from ingest.errors import DecodeError

    class Node(TimedNode):
        def _block(self, n: int) -> dict[str, Any] | None:
            b = super()._block(n)
            if b is not None and n == 3:
                b["gasUsed"] = "0x" + "f" * 17
            return b

    with Warehouse(tmp_path / "w.duckdb") as wh:
        with pytest.raises(DecodeError) as e:
            run_ingest(wh, Node([1000 + 12 * n for n in range(6)], finalized=5), IngestRequest(  # type: ignore[arg-type]
                chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",), from_block=0,
                endpoint_label="t"))
        assert (e.value.block_number, e.value.field) == (3, "gasUsed"), str(e.value)
        assert wh.con.execute("SELECT count(*) FROM raw.blocks").fetchall() == [(0,)]


def test_a_finalized_block_above_the_reported_head_is_no_negative_depth(tmp_path: Path) -> None:
    """A load-balanced endpoint whose eth_blockNumber comes from a lagging backend can report a
    'finalized' block above that head. The watermark then went past the head and
    confirmations_at_ingest (head - number) was negative for a UBIGINT: the chunk failed with an
    untyped DuckDB error. The head is at least the finalized block (fails before)."""

    class Lagging(TimedNode):
        def call(self, method: str, params: list[Any]) -> Any:
            return hex(20) if method == "eth_blockNumber" else super().call(method, params)

    with Warehouse(tmp_path / "w.duckdb") as wh:
        s = run_ingest(wh, Lagging([1000 + 12 * n for n in range(31)], finalized=25),  # type: ignore[arg-type]
                       IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(),
                                     datasets=("blocks",), from_block=0, endpoint_label="t"))
        assert s.to_block == 25
        assert wh.con.execute("SELECT count(*), min(confirmations_at_ingest), max(confirmations_at_ingest) "
                              "FROM raw.blocks WHERE finality_at_ingest = 'finalized'"
                              ).fetchall() == [(26, 0, 25)]


def test_a_deployment_name_declared_twice_in_one_file_is_refused(tmp_path: Path) -> None:
    """A deployment's name is its source key (raw rows, checkpoints): two aave_v3 markets named
    alike in one file were both accepted and their rows and checkpoints mixed under one source
    (refused since 72f18f3; this pins the deployment case, the feed case is above)."""
    entry = ('[[deployment]]\nname = "m"\nprotocol = "aave_v3"\nchain_id = 1\nstart_block = 5\n'
             '[deployment.contracts]\npool = "{}"\n\n')
    p = _write(tmp_path, entry.format(PROXY_A) + entry.format(PROXY_B))
    with pytest.raises(DeploymentsFileError) as e:
        load_deployments(p)
    assert (e.value.line, e.value.field) == (10, "deployment[1].name"), str(e.value)


def test_entries_of_other_chains_are_named_when_skipped(tmp_path: Path) -> None:
    """A file without [meta] may mix chains; an ingest of chain 31337 skipped its chain-1 feed
    without a word (a typo'd chain_id drops a feed from the data). The run now says which
    entries it skipped and why (fails before)."""
    p = _write(tmp_path, f'[[feed]]\nname = "A"\nchain_id = {CHAIN}\nproxy = "{PROXY_A}"\n'
                         f'start_block = 0\n\n[[feed]]\nname = "B"\nchain_id = 1\n'
                         f'proxy = "{PROXY_B}"\nstart_block = 0\n')
    dset = load_deployments(p)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        s = run_ingest(wh, TimedNode([1000 + 12 * n for n in range(6)], finalized=5),  # type: ignore[arg-type]
                       IngestRequest(chain_id=CHAIN, deployments=dset, datasets=("blocks",),
                                     from_block=0, endpoint_label="t"))
    assert any("feed 'B'" in w and "chain 1" in w for w in s.warnings), s.warnings


class _SpanNode:
    """A transport whose eth_getLogs answers one log per block and refuses spans wider than a
    limit that changes at random, in three providers' wordings (plain, proposed range, width)."""

    label = "t"

    def __init__(self, rng: Any):
        self.rng, self.limit = rng, rng.randint(1, 50)

    def send(self, body: bytes, *, timeout: float) -> Any:
        import json

        from ingest.transports import HttpResponse

        req = json.loads(body)
        p = req["params"][0]
        a, b = int(p["fromBlock"], 16), int(p["toBlock"], 16)
        if self.rng.random() < 0.1:
            self.limit = self.rng.randint(1, 50)
        if b - a + 1 > self.limit:
            msg = self.rng.choice([
                "query returned more than 10000 results",
                f"Log response size exceeded. this block range should work: [{hex(a)}, "
                f"{hex(a + self.limit - 1)}]",
                f"block range is too wide (maximum {self.limit})"])
            out: dict[str, Any] = {"jsonrpc": "2.0", "id": req["id"],
                                   "error": {"code": -32005, "message": msg}}
        else:
            out = {"jsonrpc": "2.0", "id": req["id"], "result": [
                {"blockNumber": hex(n), "logIndex": "0x0", "address": "0x" + "11" * 20,
                 "topics": [], "data": "0x", "blockHash": "0x" + "00" * 32,
                 "transactionHash": "0x" + "00" * 32, "transactionIndex": "0x0",
                 "removed": False} for n in range(a, b + 1)]}
        return HttpResponse(200, {}, json.dumps(out).encode())

    def close(self) -> None:
        pass


def test_split_and_regrown_log_spans_cover_the_range_exactly_once() -> None:
    """eth_getLogs spans shrink on refusals (to the proposed width or half) and double back
    after successes: every block of the range is asked for once, none outside it, on both the
    parsed and the raw path (held already; pinned)."""
    import json
    import random

    from ingest.rpc import JsonRpcClient

    for seed in range(60):
        rng = random.Random(seed)
        c = JsonRpcClient(_SpanNode(rng), logs_max_span=rng.randint(1, 200),  # type: ignore[arg-type]
                          backoff_base=0, sleep=lambda s: None)
        for _ in range(3):
            a = rng.randint(0, 1000)
            b = a + rng.randint(0, 700)
            if rng.random() < 0.5:
                nums = [int(x["blockNumber"], 16) for x in c.get_logs(a, b, ["0x" + "11" * 20], [None])]
            else:
                parts = c.get_logs_raw(a, b, ["0x" + "11" * 20], [None])
                assert all(a <= q.start <= q.end <= b for q in parts)
                nums = [int(x["blockNumber"], 16) for q in parts for x in json.loads(bytes(q.body))]
            assert nums == list(range(a, b + 1)), (seed, a, b)
        c.close()


def test_overlapping_runs_store_each_block_once_and_checkpoints_say_exactly_that(tmp_path: Path) -> None:
    """Runs over random, overlapping ranges with random chunk sizes and merging: raw.blocks holds
    each block of the union once, each run writes only what was missing, and the checkpoints are
    the union as disjoint, non-adjacent intervals (held already; pinned)."""
    import random

    rng = random.Random(1)
    for trial in range(12):
        head = rng.randint(5, 120)
        node = TimedNode([1000 + 12 * n for n in range(head + 1)], finalized=head)
        with Warehouse(tmp_path / f"w{trial}.duckdb") as wh:
            want: set[int] = set()
            for _ in range(rng.randint(1, 5)):
                a = rng.randint(0, head)
                b = rng.randint(a, head)
                s = run_ingest(wh, node, IngestRequest(  # type: ignore[arg-type]
                    chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                    from_block=a, to_block=b, chunk_blocks=rng.randint(1, 9),
                    chunk_rows=rng.choice([0, 5, 20, 50_000]), endpoint_label="t"))
                assert s.blocks_written == len(set(range(a, b + 1)) - want), trial
                want |= set(range(a, b + 1))
            rows = [r[0] for r in wh.con.execute("SELECT number FROM raw.blocks ORDER BY 1").fetchall()]
            assert rows == sorted(want), trial
            cov = wh.covered(CHAIN, "blocks", "chain")
            assert [n for x, y in cov for n in range(x, y + 1)] == sorted(want), (trial, cov)
            assert all(cov[i][1] + 1 < cov[i + 1][0] for i in range(len(cov) - 1)), (trial, cov)


def test_blocks_alone_start_at_the_deployments_start_as_the_help_says(tmp_path: Path) -> None:
    """`deficit ingest --preset ethereum --datasets blocks` without --from: --from's help says
    'default: deployments' start', but with no log dataset in the run there were no sources and
    the run started at block 0 (all of mainnet's headers from genesis). It starts at the given
    deployments' first start block on this chain (fails before)."""
    p = _write(tmp_path, f'[[feed]]\nname = "A"\nchain_id = {CHAIN}\nproxy = "{PROXY_A}"\n'
                         'start_block = 15\n')
    with Warehouse(tmp_path / "w.duckdb") as wh:
        s = run_ingest(wh, TimedNode([1000 + 12 * n for n in range(21)], finalized=20),  # type: ignore[arg-type]
                       IngestRequest(chain_id=CHAIN, deployments=load_deployments(p),
                                     datasets=("blocks",), endpoint_label="t"))
        assert (s.from_block, s.to_block, s.blocks_written) == (15, 20, 6)


def test_an_endpoint_label_that_is_a_url_is_stored_redacted(tmp_path: Path) -> None:
    """IngestRequest.endpoint_label is stored in meta.runs; a library caller passing the endpoint
    URL itself (as the demo does with its local node's) had its key stored (fails before)."""
    key = "0123456789abcdef0123456789abcdef"
    with Warehouse(tmp_path / "w.duckdb") as wh:
        run_ingest(wh, TimedNode([1000 + 12 * n for n in range(3)], finalized=2),  # type: ignore[arg-type]
                   IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                                 from_block=0, endpoint_label=f"https://mainnet.infura.io/v3/{key}"))
        assert wh.con.execute("SELECT endpoint_label FROM meta.runs").fetchall() == [
            ("https://mainnet.infura.io/***",)]


@pytest.mark.parametrize(("finality", "rule"), [("finalized", "finalized"), (3, "confirmations:3")])
def test_a_clipped_to_names_the_rule_and_the_flags_that_go_further(tmp_path: Path, finality: Any,
                                                                   rule: str) -> None:
    """--to above the watermark is clipped, with a warning: it told the user to 'use --finality
    head', a flag `deficit ingest` does not have (argparse refuses it), and named a confirmation
    depth as 'the 3 watermark' (fails before)."""
    with Warehouse(tmp_path / "w.duckdb") as wh:
        s = run_ingest(wh, TimedNode([1000 + 12 * n for n in range(21)], finalized=10),  # type: ignore[arg-type]
                       IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                                     from_block=0, to_block=19, finality=finality, endpoint_label="t"))
    upto = 10 if finality == "finalized" else 17
    assert (s.to_block, s.clipped_to) == (upto, upto)
    msg = next(w for w in s.warnings if "--to 19" in w)
    assert "--finality" not in msg and "--head" in msg and "--confirmations" in msg, msg
    assert f"the {rule} watermark {upto}" in msg, msg
    with Warehouse(tmp_path / "h.duckdb") as wh:
        s = run_ingest(wh, TimedNode([1000 + 12 * n for n in range(21)], finalized=10),  # type: ignore[arg-type]
                       IngestRequest(chain_id=CHAIN, deployments=DeploymentSet(), datasets=("blocks",),
                                     from_block=0, to_block=25, finality="head", endpoint_label="t"))
    assert (s.to_block, s.clipped_to) == (20, 20)
    assert "--to 25 is above the node's head 20; stopping at 20" in s.warnings, s.warnings


def test_a_block_missing_while_resolving_a_time_is_a_typed_error() -> None:
    """Resolving --from/--to times reads block timestamps up to the reported head; a node that
    returns no block below its head (a lagging backend behind a load balancer) made it fail with
    an untyped TypeError ('NoneType' object is not subscriptable), a traceback at the CLI. It is
    a ChainDataError naming the block (fails before)."""
    from ingest.errors import ChainDataError

    class Gappy(TimedNode):
        def _block(self, n: int) -> dict[str, Any] | None:
            return None if n == 10 else super()._block(n)

    node = Gappy([1000 + 12 * n for n in range(21)])
    with pytest.raises(ChainDataError, match="no block 10"):
        resolve_block_at(node, dt.datetime.fromtimestamp(1000 + 12 * 3, dt.UTC),  # type: ignore[arg-type]
                         first_at_or_after=True)
