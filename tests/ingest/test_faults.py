"""Faults through the transport seam, end to end against a real anvil.

``FaultyTransport`` is a fake used only to inject what a real local node cannot produce (429s,
5xx, timeouts, truncated bodies, provider range limits, a wrong chain id, a log whose block hash
is not its block's); everything else is forwarded to the real node. Either the warehouse ends
equal to a fault-free run, or a typed error stops the run with nothing half-written.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest

from ingest.deployments import load_deployments
from ingest.devchain import DevChain
from ingest.engine import IngestRequest, run_ingest
from ingest.errors import ChainIdMismatch, InconsistentLogError, RangeTooLarge
from ingest.rpc import JsonRpcClient
from ingest.transports import HttpResponse, HttpTransport, TransportTimeout
from ingest.warehouse import Warehouse

from .chainbuilder import build_market_chain
from .test_ingest_anvil import ingest, snapshot

pytestmark = pytest.mark.anvil
ROOT = Path(__file__).resolve().parents[2]


class FaultyTransport:
    """Forwards to a real node, injecting faults with a seeded probability (a test fake)."""

    def __init__(self, url: str, *, seed: int = 0, p: float = 0.0, kinds: tuple[str, ...] = (),
                 chain_id: int | None = None, bad_block_hash_at: int | None = None,
                 logs_limit: int | None = None, corrupt_logs: int = 0):
        self.inner = HttpTransport(url)
        self.label = "faulty"
        self.rng = random.Random(seed)
        self.p, self.kinds = p, kinds
        self.chain_id, self.bad_block_hash_at, self.logs_limit = chain_id, bad_block_hash_at, logs_limit
        self.injected: dict[str, int] = {}
        self.corrupt_logs = corrupt_logs  # this many non-empty eth_getLogs bodies get bad JSON

    def _count(self, k: str) -> None:
        self.injected[k] = self.injected.get(k, 0) + 1

    def send(self, body: bytes, *, timeout: float) -> HttpResponse:
        req = orjson.loads(body)
        method = req.get("method") if isinstance(req, dict) else None
        if self.chain_id is not None and method == "eth_chainId":
            return self._json({"jsonrpc": "2.0", "id": req["id"], "result": hex(self.chain_id)})
        if method == "eth_getLogs" and self.logs_limit is not None:
            f = req["params"][0]
            span = int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1
            if span > self.logs_limit:
                self._count("range")
                msg = self.rng.choice([
                    "query returned more than 10000 results",  # Infura
                    "block range is too wide",  # Ankr
                    f"eth_getLogs is limited to a {self.logs_limit} range",  # QuickNode
                ])
                return self._json({"jsonrpc": "2.0", "id": req["id"],
                                   "error": {"code": -32005, "message": msg}})
        if self.kinds and self.rng.random() < self.p:
            kind = self.rng.choice(self.kinds)
            self._count(kind)
            if kind == "429":
                return HttpResponse(429, {"retry-after": "0"}, b"Too Many Requests")
            if kind in ("500", "502", "503"):
                return HttpResponse(int(kind), {}, b"<html>bad gateway</html>")
            if kind == "timeout":
                raise TransportTimeout("read timed out (injected)")
            if kind == "truncated":
                r = self.inner.send(body, timeout=timeout)
                return HttpResponse(200, r.headers, r.body[: max(1, len(r.body) // 2)])
        r = self.inner.send(body, timeout=timeout)
        if self.corrupt_logs and method == "eth_getLogs" and b'"topics"' in r.body:
            # invalid JSON inside an envelope that still looks complete: only a JSON parser
            # can tell (the fast path's DuckDB reader, after the fetch)
            assert r.body.startswith(b'{"jsonrpc":"2.0","id":'), r.body[:40]  # anvil's plain one
            self.corrupt_logs -= 1
            self._count("corrupt_inside")
            return HttpResponse(r.status, r.headers, r.body.replace(b'"topics":', b'"topics";', 1))
        if self.bad_block_hash_at is not None and method == "eth_getLogs":
            doc = orjson.loads(r.body)
            for lg in doc.get("result") or []:
                if int(lg["blockNumber"], 16) == self.bad_block_hash_at:
                    lg["blockHash"] = "0x" + "ee" * 32
                    self._count("bad_hash")
            return HttpResponse(r.status, r.headers, orjson.dumps(doc))
        return r

    @staticmethod
    def _json(doc: dict) -> HttpResponse:
        return HttpResponse(200, {"content-type": "application/json"}, orjson.dumps(doc))

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def market(anvil, tmp_path):
    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=9, times=1, rounds=5)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    clean = tmp_path / "clean.duckdb"
    ingest(anvil.url, clean, dep)
    yield anvil, chain, dep, snapshot(clean)
    chain.close()


def _run(transport, db: Path, dep: Path, **kw):
    rpc = JsonRpcClient(transport, backoff_base=0.0001, backoff_max=0.001, max_retries=12,
                        sleep=lambda s: None, seed=1, logs_max_span=kw.pop("span", 10_000))
    try:
        with Warehouse(db) as wh:
            return run_ingest(wh, rpc, IngestRequest(
                chain_id=31337, deployments=load_deployments(dep), finality="head",
                chunk_blocks=kw.pop("chunk_blocks", 25), endpoint_label="faulty", **kw))
    finally:
        rpc.close()


@pytest.mark.parametrize("kinds", [("429",), ("500", "502", "503"), ("timeout",), ("truncated",),
                                   ("429", "500", "502", "503", "timeout", "truncated")])
def test_transient_faults_leave_tables_equal_to_the_fault_free_run(market, tmp_path, kinds):
    node, chain, dep, clean = market
    t = FaultyTransport(node.url, seed=len(kinds), p=0.3, kinds=kinds)
    _run(t, tmp_path / "w.duckdb", dep)
    assert sum(t.injected.values()) >= 5, t.injected
    assert snapshot(tmp_path / "w.duckdb") == clean


def test_corrupt_json_inside_a_complete_looking_body_is_refetched(market, tmp_path, caplog):
    node, chain, dep, clean = market
    t = FaultyTransport(node.url, corrupt_logs=3)
    with caplog.at_level("INFO", logger="deficit.ingest"):
        _run(t, tmp_path / "w.duckdb", dep)
    assert t.injected == {"corrupt_inside": 3}
    assert "re-reading the chunk through the parsed path" in caplog.text
    assert snapshot(tmp_path / "w.duckdb") == clean


def test_provider_range_limits_split_and_still_equal(market, tmp_path):
    node, chain, dep, clean = market
    t = FaultyTransport(node.url, seed=3, logs_limit=4)
    _run(t, tmp_path / "w.duckdb", dep, chunk_blocks=50)
    assert t.injected["range"] > 0
    assert snapshot(tmp_path / "w.duckdb") == clean


def test_range_limit_that_cannot_be_split_stops_the_run(market, tmp_path):
    node, chain, dep, _ = market
    t = FaultyTransport(node.url, logs_limit=0)
    with pytest.raises(RangeTooLarge):
        _run(t, tmp_path / "w.duckdb", dep)


def test_wrong_chain_id_stops_before_writing(market, tmp_path):
    node, chain, dep, _ = market
    db = tmp_path / "w.duckdb"
    with pytest.raises(ChainIdMismatch) as ei:
        _run(FaultyTransport(node.url, chain_id=1), db, dep)
    assert "31337" in str(ei.value) and "1" in str(ei.value)
    with Warehouse(db, read_only=True) as wh:
        assert wh.con.execute("SELECT count(*) FROM raw.blocks").fetchall() == [(0,)]
        status, msg = wh.con.execute("SELECT status, message FROM meta.runs").fetchall()[0]
    assert status == "failed" and "ChainIdMismatch" in msg


def test_log_with_a_block_hash_not_its_blocks_stops_the_run_cleanly(market, tmp_path):
    node, chain, dep, clean = market
    db = tmp_path / "w.duckdb"
    bad = clean["logs"][len(clean["logs"]) // 2][1]  # a block that has logs
    assert bad >= 25
    t = FaultyTransport(node.url, bad_block_hash_at=bad)
    with pytest.raises(InconsistentLogError) as ei:
        _run(t, db, dep, chunk_blocks=25)
    assert f"block {bad}" in str(ei.value)
    with Warehouse(db, read_only=True) as wh:
        # earlier chunks are complete and committed; nothing of the failing chunk was written
        first_bad_chunk = bad - bad % 25
        assert wh.con.execute("SELECT max(number) FROM raw.blocks").fetchall() == [
            (first_bad_chunk - 1,)]
        assert wh.con.execute("SELECT count(*) FROM raw.logs WHERE block_number >= ?",
                              [first_bad_chunk]).fetchall() == [(0,)]
        assert wh.con.execute("SELECT status FROM meta.runs").fetchall() == [("failed",)]
    # and once the node answers consistently, the run resumes to the fault-free result
    _run(HttpTransport(node.url), db, dep)
    assert snapshot(db) == clean


# ------------------------------------------------------------------ secrets never leak
class _PathProxy(BaseHTTPRequestHandler):
    """A local reverse proxy that accepts a provider-style URL with a key in path and query."""

    target = ""
    fail = False

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.fail:
            self.send_response(403)
            payload = f"forbidden for {self.path}".encode()  # providers echo the path, key included
        else:
            r = httpx.post(self.target, content=body, headers={"content-type": "application/json"})
            self.send_response(r.status_code)
            payload = r.content
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("fail", [False, True])
def test_secret_in_rpc_url_never_reaches_output_tables_or_errors(anvil, tmp_path, fail):
    chain = DevChain(anvil.url)
    m = build_market_chain(chain, seed=2, times=1, datasets=("aave_v3",), rounds=2)
    dep = tmp_path / "dep.toml"
    dep.write_text(m.deployments_toml)
    handler = type("H", (_PathProxy,), {"target": anvil.url, "fail": fail})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = ThreadingHTTPServer(("127.0.0.1", port), handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    key, qkey = "SECRETKEYabcdef0123456789", "QSECRET42"
    url = f"http://user:PASSWORDX@127.0.0.1:{port}/v2/{key}?apikey={qkey}"
    db = tmp_path / "w.duckdb"
    try:
        env = {**os.environ, "DEFICIT_RPC_URL": url}
        p = subprocess.run([sys.executable, "-m", "ingest.cli", "-v", "ingest", "--deployments",
                            str(dep), "--head", "--db", str(db)], cwd=ROOT, env=env,
                           capture_output=True, timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()
        chain.close()
    out = p.stdout.decode() + p.stderr.decode()
    assert (p.returncode != 0) == fail, out
    for secret in (key, qkey, "PASSWORDX"):
        assert secret not in out
    assert "127.0.0.1" in out or p.returncode == 0
    with Warehouse(db, read_only=True) as wh:
        dump = str(wh.con.execute("SELECT * FROM meta.runs").fetchall())
        if not fail:
            dump += str(wh.con.execute("SELECT * FROM raw.blocks LIMIT 3").fetchall())
    for secret in (key, qkey, "PASSWORDX"):
        assert secret not in dump
    assert "/***" in dump


class _PrunedGeth(FaultyTransport):
    """A geth full node: every eth_call is answered with geth's -32000 "missing trie node"."""

    def send(self, body: bytes, *, timeout: float) -> HttpResponse:
        req = orjson.loads(body)
        if isinstance(req, dict) and req.get("method") == "eth_call":
            self._count("missing_state")
            return self._json({"jsonrpc": "2.0", "id": req["id"], "error": {
                "code": -32000, "message": "missing trie node 5c0f3cf9b1c4e1a2 (path ) <nil>"}})
        return super().send(body, timeout=timeout)


def test_a_node_without_state_is_not_read_as_a_bare_aggregator(market, tmp_path):
    """geth answers an eth_call on pruned state with code -32000, which eth_call's revert test
    also accepted: phaseId() 'reverted', so each feed proxy was taken for a bare aggregator and
    its rounds read from the proxy's address (none), silently. It stops with the no-state error."""
    node, _chain, dep, _clean = market
    from ingest.errors import ConfigError

    t = _PrunedGeth(node.url)
    with pytest.raises(ConfigError, match=r"the node has no state at block \d+ .*\(missing trie node"):
        _run(t, tmp_path / "w.duckdb", dep)
    assert t.injected["missing_state"] >= 1
