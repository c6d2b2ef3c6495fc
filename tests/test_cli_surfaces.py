"""The ``deficit`` command line as a user (or a CI runner) meets it: flags with a wrong value,
signals, output that must not be reshaped. Each bad input is a typed error naming the flag, exit
2, no traceback and no warehouse file; a stopped run says so and leaves its record consistent.

Runs the real command in a subprocess; the ingest ones against a real anvil (conftest).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from backtest.demo import SAMPLE_DB, demo_scenarios, prepare_warehouse

ROOT = Path(__file__).resolve().parents[1]


def deficit(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backtest.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, errors="backslashreplace", timeout=timeout)


def _demo_copy(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A demo copy of the sample in ``tmp_path`` and the demo's scenario texts."""
    db = tmp_path / "w.duckdb"
    prepare_warehouse(db, SAMPLE_DB)
    con = duckdb.connect(str(db), read_only=True)
    try:
        meta = {str(k): str(v) for k, v in con.execute("SELECT key, value FROM meta.sample").fetchall()}
    finally:
        con.close()
    return db, demo_scenarios(meta)


def assert_user_error(r: subprocess.CompletedProcess[str]) -> str:
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert "Traceback" not in out, out
    return out


@pytest.mark.parametrize("limit", ["banana", "1GB'; SELECT 1; --", "", "-1GB", "0MB"])
def test_a_bad_memory_limit_names_the_flag_and_creates_nothing(tmp_path: Path, limit: str) -> None:
    """--memory-limit went into ``SET memory_limit = '<value>'`` after the warehouse file was
    created: a DuckDB ParserException traceback (exit 1) and an empty warehouse left behind, and
    DuckDB reads -1GB as no limit at all (16 PiB), so a negative one was silently none. The
    endpoint is a closed port: the flag is judged before anything is contacted or opened."""
    db = tmp_path / "w.duckdb"
    r = deficit("ingest", "--rpc", "http://127.0.0.1:1", "--chain", "1", "--db", str(db),
                f"--memory-limit={limit}")
    out = assert_user_error(r)
    assert "--memory-limit" in out and repr(limit) in out, out
    assert not db.exists()


@pytest.mark.parametrize("chain", ["0", str(2**64), "99999999999999999999999"])
def test_a_chain_id_out_of_range_is_refused(tmp_path: Path, chain: str) -> None:
    """A chain id is a positive integer that meta.runs stores as UBIGINT: a larger one was a
    DuckDB ConversionException traceback (exit 1) from the meta.runs insert, with the warehouse
    file already created; 0 (no chain has it, EIP-155) was sent to the node as the declared id."""
    db = tmp_path / "w.duckdb"
    r = deficit("ingest", "--rpc", "http://127.0.0.1:1", "--chain", chain, "--db", str(db))
    out = assert_user_error(r)
    assert "--chain" in out and chain in out, out
    assert not db.exists()


def test_error_messages_are_printed_as_written(tmp_path: Path) -> None:
    """Messages went through rich with emoji codes on: a ':x:' in an error (here the first record
    of a passwd-like file the importer quotes) was printed as an emoji, so the message no longer
    showed the file's text."""
    f = tmp_path / "prices.csv"
    f.write_text("root:x:0:0:root:/root:/bin/bash\n")
    r = deficit("import-prices", str(f), "--pair", "ETH/USD", "--db", str(tmp_path / "w.duckdb"))
    out = assert_user_error(r)
    assert "root:x:0:0:root" in r.stderr, out


def test_a_run_summary_prints_the_scenario_name_as_written(tmp_path: Path) -> None:
    """The same for ``deficit run``'s summary: a scenario named 'crash :x: test' was printed as
    'crash ❌ test'; and its closing hint, the command that writes the report, was wrapped at
    80 columns when not on a terminal (a CI log), splitting '--db' from its path."""
    from tests.test_cli_errors import small

    db, scenarios = _demo_copy(tmp_path)
    text = re.sub(r'(?m)^name = ".*"$', 'name = "crash :x: test"',
                  small(scenarios["counterfactual"]))
    f = tmp_path / "s.toml"
    f.write_text(text)
    r = deficit("run", str(f), "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert "crash :x: test" in r.stdout, r.stdout
    rid = re.search(r"^run (\S+):", r.stdout)
    assert rid is not None, r.stdout
    assert f"report: deficit report {rid.group(1)} --db {db}\n" in r.stdout, r.stdout


def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")])
def test_a_stopped_ingest_says_so_and_records_a_failed_run(anvil, tmp_path: Path, sig: int, code: int,
                                                           word: str) -> None:
    """SIGTERM (what `timeout`, a CI runner or systemd sends) killed the ingest outright: no
    message, exit -15, and its meta.runs row said 'running' forever. Now it is handled as Ctrl-C
    is: the open chunk rolled back, the run marked failed, a message, exit 128 + signal. The rows
    left are exactly the committed chunks (raw.blocks matches meta.checkpoints)."""
    anvil.rpc("anvil_mine", [hex(3000)])
    db = tmp_path / "w.duckdb"
    # throttled (20 requests/s, 10 calls each, 50-block chunks): the ingest of 3,000 blocks takes
    # ~15 s, so the signal lands mid-run
    with subprocess.Popen(
            [sys.executable, "-m", "backtest.cli", "ingest", "--rpc", anvil.url, "--chain", "31337",
             "--db", str(db), "--head", "--chunk-blocks", "50", "--chunk-rows", "0", "--rps", "20",
             "--batch-size", "10"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # a test runner may ignore SIGINT in its children (a background job): restore it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as p:
        _wait_for(db)
        time.sleep(3)
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    assert p.returncode == code, (p.returncode, out, err)
    assert "Traceback" not in err and word in err, err
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT status, message FROM meta.runs").fetchall()
        n, lo, hi = con.execute("SELECT count(*), min(number), max(number) FROM raw.blocks").fetchall()[0]
        cps = con.execute("SELECT from_block, to_block FROM meta.checkpoints WHERE dataset = 'blocks'"
                          ).fetchall()
    finally:
        con.close()
    assert len(runs) == 1 and runs[0][0] == "failed", runs
    assert n < 3001, n  # stopped mid-run
    assert cps == ([(lo, hi)] if n else []) and n == (hi - lo + 1 if n else 0), (cps, n, lo, hi)


#: ``deficit`` with one fault injected: in its Nth warehouse transaction it runs a long real DuckDB
#: query (a few seconds) and sends itself the signal meanwhile (a thread of its own), so the real
#: signal reaches the real DuckDB client mid-query; by chance a Ctrl-C lands there only now and
#: then (a COMMIT, a large read). Nothing else is changed. (DuckDB now and then misses the signal
#: and finishes the query; the KeyboardInterrupt follows it, so the outcome is the same.)
_DRIVER = """
import contextlib, os, signal, sys, threading
from ingest import warehouse
sig, nth = int(sys.argv[1]), int(sys.argv[2])
orig, seen = warehouse.Warehouse.transaction, [0]

@contextlib.contextmanager
def transaction(self):
    with orig(self) as con:
        seen[0] += 1
        if seen[0] == nth:
            threading.Timer(0.5, os.kill, (os.getpid(), sig)).start()
            con.execute("SELECT sum(i) FROM range(3000000000) t(i)").fetchall()
        yield con

warehouse.Warehouse.transaction = transaction
from backtest.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _driven(sig: int, nth: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _DRIVER, str(int(sig)), str(nth), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_a_signal_during_a_duckdb_query_stops_an_ingest_cleanly(anvil, tmp_path: Path, sig: int, code: int,
                                                                word: str) -> None:
    """DuckDB 2.x's Python client turns a Ctrl-C that arrives during one of its queries into
    RuntimeError('Query interrupted'): the ingest ended in a traceback, exit 1 (SIGTERM, before
    it was handled: killed, -15). Now: the message, 128 + signal, the run marked failed, the rows
    exactly the committed chunks."""
    anvil.rpc("anvil_mine", [hex(400)])
    db = tmp_path / "w.duckdb"
    r = _driven(sig, 4, "ingest", "--rpc", anvil.url, "--chain", "31337", "--db", str(db), "--head",
                "--chunk-blocks", "50", "--chunk-rows", "0")
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and word in r.stderr, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        runs = con.execute("SELECT status FROM meta.runs").fetchall()
        n, lo, hi = con.execute("SELECT count(*), min(number), max(number) FROM raw.blocks").fetchall()[0]
        cps = con.execute("SELECT from_block, to_block FROM meta.checkpoints WHERE dataset = 'blocks'"
                          ).fetchall()
    finally:
        con.close()
    assert runs == [("failed",)], runs
    assert 0 < n < 401 and cps == [(lo, hi)] and n == hi - lo + 1, (cps, n, lo, hi)


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_ctrl_c_during_a_duckdb_query_of_a_run_is_an_interrupt(tmp_path: Path, command: str) -> None:
    """The same for ``deficit run`` (a traceback, exit 1) and ``deficit check`` (an 'internal
    error', exit 2 with a traceback): interrupted, exit 130, nothing of the run written."""
    from tests.test_cli_errors import small

    db, scenarios = _demo_copy(tmp_path)
    f = tmp_path / "s.toml"
    f.write_text(small(scenarios["counterfactual"]) + "\n[checks]\nmax_bad_debt_usd = 1\n")
    # the run's first transaction is the one that writes its rows
    r = _driven(signal.SIGINT, 1, command, str(f), "--db", str(db))
    assert r.returncode == 130, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "interrupted" in r.stderr, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'bt' AND table_name = "
                        "'runs'").fetchall()[0][0]
        rows = con.execute("SELECT count(*) FROM bt.runs").fetchall()[0][0] if n else 0
    finally:
        con.close()
    assert rows == 0


class _EchoingNode:
    """A real local HTTP server standing in for a provider that rejects the key: every JSON-RPC
    call gets an error whose message quotes the request's path and query and its Authorization
    header, as providers' 'invalid project id /v3/<id>' answers do."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                msg = f"invalid key in {self.path} (auth {self.headers.get('authorization', '-')})"
                reqs = body if isinstance(body, list) else [body]
                out = [{"jsonrpc": "2.0", "id": r.get("id"), "error": {"code": -32000, "message": msg}}
                       for r in reqs]
                data = json.dumps(out if isinstance(body, list) else out[0]).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("path, secrets", [
    ("/v3/SECRET?apikey=SECRET2", ["SECRET"]),  # the brief's example: a short key in the path
    ("/v2/shortkey9", ["shortkey9"]),
])
def test_a_provider_echoing_the_url_leaks_no_key(tmp_path: Path, path: str, secrets: list[str]) -> None:
    """redact_text masked path segments of 16+ characters only, so a provider's error quoting
    the request path put a shorter key ('/v3/SECRET') in the error printed and in meta.runs."""
    node = _EchoingNode()
    try:
        db = tmp_path / "w.duckdb"
        r = deficit("ingest", "--rpc", f"http://127.0.0.1:{node.port}{path}", "--chain", "1", "--db", str(db))
    finally:
        node.close()
    assert r.returncode == 1 and "invalid key in" in r.stderr, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = str(con.execute("SELECT * FROM meta.runs").fetchall())
    finally:
        con.close()
    assert "invalid key in" in stored, stored
    for s in secrets:
        assert s not in r.stdout + r.stderr and s not in stored, (r.stderr, stored)


def test_a_provider_echoing_basic_auth_leaks_no_password(tmp_path: Path) -> None:
    """The userinfo was masked as written, but not as the Authorization header carries it
    (base64 of 'user:password'), which a provider's error may quote back."""
    import base64

    node = _EchoingNode()
    try:
        db = tmp_path / "w.duckdb"
        r = deficit("ingest", "--rpc", f"http://alice:Pa55word@127.0.0.1:{node.port}/", "--chain", "1",
                    "--db", str(db))
    finally:
        node.close()
    token = base64.b64encode(b"alice:Pa55word").decode()
    assert r.returncode == 1 and "invalid key in" in r.stderr, r.stderr
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = str(con.execute("SELECT * FROM meta.runs").fetchall())
    finally:
        con.close()
    for s in (token, "Pa55word"):
        assert s not in r.stdout + r.stderr and s not in stored, (r.stderr, stored)


def test_from_after_to_names_both_flags_and_writes_nothing(anvil, tmp_path: Path) -> None:
    """--from 10 --to 5 was judged only inside the run, after the warehouse file was created and
    a failed meta.runs row written, as 'from block 10 is above the last ingestible block 5
    (finality head)': the node's finality blamed for the flags' own range."""
    anvil.rpc("anvil_mine", [hex(20)])
    db = tmp_path / "w.duckdb"
    r = deficit("ingest", "--rpc", anvil.url, "--chain", "31337", "--db", str(db), "--head",
                "--from", "10", "--to", "5")
    out = assert_user_error(r)
    assert "--from 10" in r.stderr and "--to 5" in r.stderr and "finality" not in r.stderr, out
    assert not db.exists()


@pytest.mark.parametrize("command", ["run", "check", "runs"])
def test_a_file_name_that_is_not_utf8_is_a_usage_error(tmp_path: Path, command: str) -> None:
    """A path whose bytes are not UTF-8 (a Latin-1 'é' in a file name): deficit run ended in a
    traceback when bt.runs stored the scenario path (exit 1), deficit check reported an internal
    error, and a --db named so was DuckDB's 'std::bad_cast' traceback. Refused up front, naming
    the argument; nothing written."""
    import os

    from tests.test_cli_errors import small

    db, scenarios = _demo_copy(tmp_path)
    text = small(scenarios["counterfactual"]) + "\n[checks]\nmax_bad_debt_usd = 1e12\n"
    scenario = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.toml")
    Path(scenario).write_text(text)
    bad_db = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.duckdb")
    Path(bad_db).write_bytes(db.read_bytes())
    args = {"run": ["run", scenario, "--db", str(db)], "check": ["check", scenario, "--db", str(db)],
            "runs": ["runs", "--db", bad_db]}[command]
    r = deficit(*args)
    out = assert_user_error(r)
    assert "not UTF-8" in r.stderr and ("--db" if command == "runs" else "scenario") in r.stderr, out
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert not con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'bt' "
                               "AND table_name = 'runs'").fetchall()[0][0]
    finally:
        con.close()


def test_import_prices_json_has_json_types(tmp_path: Path) -> None:
    """import-prices --json printed every field as a string: counts as "4320", absent times as
    the string "None", times as Python's str() ("2021-01-10 00:00:29.852629+00:00"). Counts are
    numbers, absent values null, times ISO-8601, as ingest --json prints them. Expected values from
    the CSV itself (the committed Binance futures file of the sample)."""
    import csv
    import datetime as dt
    import json

    f = ROOT / "data" / "sample" / "ethusdt_binance_futures_2021-01-10_to_2021-01-12.csv"
    with f.open() as fh:
        recs = list(csv.DictReader(fh))
    r = deficit("import-prices", str(f), "--pair", "ETH/USDT", "--db", str(tmp_path / "w.duckdb"), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rows"] == len(recs) and doc["replaced"] == 0 and doc["dropped"] == 0
    assert doc["dropped_first_ts"] is None and doc["dropped_last_ts"] is None
    first = dt.datetime.fromisoformat(recs[0]["datetime_utc"]).replace(tzinfo=dt.UTC)
    assert dt.datetime.fromisoformat(doc["first_ts"]) == first and "T" in doc["first_ts"]


@pytest.mark.parametrize("command", ["ingest", "migrate", "import-prices", "run", "runs"])
def test_a_db_that_is_not_a_warehouse_is_bad_input_everywhere(tmp_path: Path, command: str) -> None:
    """--db naming a directory or a file that is not DuckDB: deficit run, check and runs exit 2
    (bad input, nothing written), but ingest, migrate and import-prices exited 1, the code they
    document for a run that failed, so a script could not tell a typo from a failed run."""
    not_db = tmp_path / "notes.txt"
    not_db.write_text("not a warehouse\n")
    prices = ROOT / "data" / "sample" / "ethusdt_binance_futures_2021-01-10_to_2021-01-12.csv"
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "x"\nmode = "historical"\nchain_id = 31337\n[market]\nprotocol = "aave_v3"\n'
                        'source = "s"\n[window]\nfrom_block = 1\nto_block = 2\n')
    for db in (not_db, tmp_path):
        args = {"ingest": ["ingest", "--rpc", "http://127.0.0.1:1", "--chain", "1", "--db", str(db)],
                "migrate": ["migrate", "--db", str(db)],
                "import-prices": ["import-prices", str(prices), "--pair", "ETH/USDT", "--db", str(db)],
                "run": ["run", str(scenario), "--db", str(db)],
                "runs": ["runs", "--db", str(db)]}[command]
        r = deficit(*args)
        out = assert_user_error(r)
        assert str(db) in r.stderr, out
    assert not_db.read_text() == "not a warehouse\n"


def test_a_baseline_that_is_not_utf8_is_a_typed_error(tmp_path: Path) -> None:
    """A --baseline file that is not UTF-8 (JSON is UTF-8, RFC 8259) was read in the locale's
    encoding and, undecodable, ended deficit check as an 'internal error' with a traceback; now
    an error naming the file and the offset, nothing judged (exit 2)."""
    db, scenarios = _demo_copy(tmp_path)
    f = tmp_path / "s.toml"
    f.write_text(scenarios["historical"])
    b = tmp_path / "b.json"
    b.write_bytes(b'{"format": "deficit-baseline/1", "scenario": "caf\xe9"}')
    r = deficit("check", str(f), "--db", str(db), "--baseline", str(b))
    out = assert_user_error(r)
    assert f"baseline {b}: not UTF-8" in r.stderr and "byte 0xe9" in r.stderr, out


def test_a_deployments_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    """--deployments FILE not in UTF-8 (TOML's encoding; a Latin-1 'é' on line 3) was a
    UnicodeDecodeError traceback, exit 1; now a DeploymentsFileError at the line, exit 2, before
    any endpoint is contacted or warehouse created."""
    f = tmp_path / "dep.toml"
    f.write_bytes(b'# my deployments\n[meta]\nname = "caf\xe9"\n')
    db = tmp_path / "w.duckdb"
    r = deficit("ingest", "--rpc", "http://127.0.0.1:1", "--deployments", str(f), "--db", str(db))
    out = assert_user_error(r)
    assert f"{f}:3" in r.stderr and "not UTF-8" in r.stderr and "0xe9" in r.stderr, out
    assert not db.exists()


def test_runs_of_a_warehouse_without_runs_is_an_empty_list(tmp_path: Path) -> None:
    """deficit runs on a warehouse with nothing run yet (the bundled sample as shipped: raw and
    meta tables only) was an error, exit 2 and nothing on stdout, while the same warehouse once
    its bt tables existed but held no row listed '[]', exit 0: 'no runs' is an empty list either
    way (report and compare, which name a run, still refuse)."""
    import json

    db = tmp_path / "s.duckdb"
    db.write_bytes(SAMPLE_DB.read_bytes())
    r = deficit("runs", "--db", str(db), "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == [], (r.stdout, r.stderr)
    r = deficit("runs", "--db", str(db))
    assert r.returncode == 0 and "0 run(s)" in r.stdout, (r.stdout, r.stderr)
    assert_user_error(deficit("report", "x", "--db", str(db)))


@pytest.mark.parametrize("flag, value", [("--from", str(2**64)), ("--to", "99999999999999999999999"),
                                         ("--from", hex(2**64))])
def test_a_block_number_out_of_range_is_refused(tmp_path: Path, flag: str, value: str) -> None:
    """A block number past what meta.runs stores (UBIGINT) was a DuckDB ConversionException
    traceback from the meta.runs insert (exit 1) with the warehouse file created."""
    db = tmp_path / "w.duckdb"
    r = deficit("ingest", "--rpc", "http://127.0.0.1:1", "--chain", "1", "--db", str(db), flag, value)
    out = assert_user_error(r)
    assert flag in r.stderr and value in r.stderr, out
    assert not db.exists()


def _forced_color(*args: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "backtest.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "FORCE_COLOR": "1"})


def test_json_output_stays_json_when_colour_is_forced(anvil, tmp_path: Path) -> None:
    """FORCE_COLOR=1 (set by many CI setups to keep logs coloured) made rich colour the JSON of
    ingest, import-prices and demo-ingest --json: ANSI escapes around every key and value, so
    stdout was no longer JSON. The JSON is written plain; the other commands already did."""
    import json

    prices = ROOT / "data" / "sample" / "ethusdt_binance_futures_2021-01-10_to_2021-01-12.csv"
    anvil.rpc("anvil_mine", [hex(5)])
    for args in (["import-prices", str(prices), "--pair", "ETH/USDT", "--db", str(tmp_path / "p.duckdb")],
                 ["ingest", "--rpc", anvil.url, "--chain", "31337", "--head", "--db",
                  str(tmp_path / "i.duckdb")],
                 ["demo-ingest", "--db", str(tmp_path / "d.duckdb")]):
        r = _forced_color(*args, "--json")
        assert r.returncode == 0, r.stderr
        assert "\x1b[" not in r.stdout, r.stdout[:300]
        assert isinstance(json.loads(r.stdout), dict)


def test_deficit_check_never_exits_1_on_an_internal_error_after_the_run(tmp_path: Path) -> None:
    """Exit 1 means 'a threshold failed'. An internal error raised after the run, while the
    verdicts are written out (here the JUnit writer fails: a fault injected in a subprocess, as no
    real input makes it fail), escaped deficit check as an uncaught traceback: exit 1 for a run
    whose thresholds all held. It is an error, exit 2."""
    from tests.test_cli_errors import small

    db, scenarios = _demo_copy(tmp_path)
    f = tmp_path / "s.toml"
    f.write_text(small(scenarios["counterfactual"]) + "\n[checks]\nmax_bad_debt_usd = 1e12\n")
    driver = ("import sys\nfrom backtest import checks\n"
              "def junit_xml(*a, **k):\n    raise ValueError('injected')\n"
              "checks.junit_xml = junit_xml\nfrom backtest.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-c", driver, "check", str(f), "--db", str(db), "--junit",
                        str(tmp_path / "j.xml")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "internal error" in r.stderr and "injected" in r.stderr, r.stderr
