"""A local anvil node from ``node_modules``: started on a free port, always stopped.

Used by the test suite, the quickstart's demo chain and the benchmarks. anvil is pinned in
``package.json`` (``@foundry-rs/anvil``) and installed with ``npm ci``. It is always started with
``--max-persisted-states 0``: without it anvil writes every block's state as JSON under
``~/.foundry/anvil/tmp`` and never deletes it (several GB per long run, see stack notes).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from .errors import ConfigError

__all__ = ["Anvil", "anvil_binary", "repo_root"]


def repo_root() -> Path:
    """The checkout this package runs from (where ``package.json`` and ``node_modules`` live)."""
    return Path(__file__).resolve().parent.parent


def anvil_binary() -> Path:
    """Path of the pinned anvil binary, or :class:`ConfigError` saying how to install it."""
    candidates = [repo_root() / "node_modules" / ".bin" / "anvil"]
    for c in candidates:
        if c.exists():
            return c
    found = shutil.which("anvil")
    if found and os.environ.get("DEFICIT_ALLOW_SYSTEM_ANVIL"):
        return Path(found)
    raise ConfigError(
        "anvil not found in node_modules/.bin: run `npm ci` in the repository root "
        "(do not pass --omit=optional: the binary is an optional platform package)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Anvil:
    """A running anvil process. Use as a context manager; :meth:`stop` is idempotent.

    ``block_time``: seconds between automatically mined blocks (None = mine on each tx).
    ``timestamp``: genesis timestamp (unix seconds), so dev chains can replay a dated history.
    ``keep_states``: keep this many historical states in memory (``--prune-history N``) instead of
    anvil's default window of about 500 blocks, for eth_call at old blocks on longer chains.
    Like ``--max-persisted-states 0`` it writes nothing to disk, but ``anvil_reorg`` does not work
    with it, so reorg tests use the default.
    """

    def __init__(self, *, chain_id: int = 31337, block_time: float | None = None,
                 timestamp: int | None = None, accounts: int = 10,
                 keep_states: int | None = None, extra_args: tuple[str, ...] = ()):
        self.chain_id = chain_id
        self.port = _free_port()
        # anvil still creates an (empty) state folder per run even when it persists nothing;
        # keep it in a temp dir of ours and remove it on stop
        self._cache = tempfile.mkdtemp(prefix="deficit-anvil-")
        self.url = f"http://127.0.0.1:{self.port}"
        args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port),
                "--silent", *(("--prune-history", str(keep_states)) if keep_states else
                              ("--max-persisted-states", "0")), "--chain-id", str(chain_id),
                "--accounts", str(accounts), "--gas-limit", "1000000000",
                "--code-size-limit", "200000", "--cache-path", self._cache]
        if block_time is not None:
            args += ["--block-time", str(block_time)]
        if timestamp is not None:
            args += ["--timestamp", str(timestamp)]
        args += list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise ConfigError(f"anvil exited with code {self._proc.returncode}: {err[-500:]}")
            try:
                r = httpx.post(self.url, json=body, timeout=1.0)
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise ConfigError(f"anvil did not answer on port {self.port} within {timeout} s")

    def rpc(self, method: str, params: list[object] | None = None, timeout: float = 120.0) -> object:
        """One plain JSON-RPC call (test and dev-chain helper; ingest uses JsonRpcClient)."""
        r = httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                       "params": params or []}, timeout=timeout)
        r.raise_for_status()
        doc = r.json()
        if "error" in doc:
            raise RuntimeError(f"{method}: {doc['error']}")
        return doc["result"]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(self._cache, ignore_errors=True)

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort: never leave an orphan node behind
        try:
            self.stop()
        except Exception:
            pass
