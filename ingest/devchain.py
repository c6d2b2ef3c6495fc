"""A tiny driver for a local dev chain (anvil): deploy the committed test contracts and poke them.

Used by the test suite and the demo to produce real logs with mainnet ABIs. It speaks raw JSON-RPC
over one keep-alive :mod:`httpx` client and encodes/decodes with :mod:`eth_abi` (web3 is ~10x
slower for this). Transactions are sent with ``eth_sendTransaction`` from anvil's unlocked dev
accounts (``eth_accounts[0]`` by default).

Artifacts are the JSON files written by ``scripts/compile_contracts.mjs`` under
``tests/contracts/artifacts/<ContractName>.json`` (``abi`` + creation ``bytecode``)::

    with Anvil() as node:
        chain = DevChain(node.url)
        agg = chain.deploy("TestOCRAggregator", 1, 10**12, 8, "ETH / USD")
        proxy = chain.deploy("TestAggregatorProxy", agg.address)
        chain.send(agg, "transmit", [100, 101, 99])
        chain.call(proxy, "latestRoundData")   # ((1 << 64) | 1, 100, ts, ts, (1 << 64) | 1)

Reverts raise :class:`TxReverted` carrying the decoded ``Error(string)`` reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from .devnet import repo_root
from .errors import IngestError

__all__ = [
    "Contract",
    "DevChain",
    "DevChainError",
    "TxReverted",
    "abi_type",
    "artifacts_dir",
    "decode_revert",
    "encode_call",
    "event_topic",
    "function_selector",
    "load_artifact",
    "signature",
]

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


class DevChainError(IngestError):
    """The dev chain refused a request (JSON-RPC error, failed deploy, unknown function...)."""


class TxReverted(DevChainError):
    """A transaction or call reverted; ``reason`` is the decoded revert string (None if unknown)."""

    def __init__(self, message: str, reason: str | None, data: bytes = b""):
        super().__init__(message)
        self.reason, self.data = reason, data


# ----- ABI helpers -----

def abi_type(param: dict[str, Any]) -> str:
    """Canonical type of an ABI parameter entry; tuples become ``(t1,t2,...)`` (+ array suffix)."""
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){t[len('tuple'):]}"
    return t


def signature(entry: dict[str, Any]) -> str:
    """``name(type1,type2)`` of a function, event or error ABI entry."""
    return f"{entry['name']}({','.join(abi_type(p) for p in entry.get('inputs', []))})"


def function_selector(entry: dict[str, Any]) -> bytes:
    return keccak(signature(entry).encode())[:4]


def event_topic(entry: dict[str, Any]) -> str:
    """topic0 (0x-hex) of an event ABI entry."""
    return "0x" + keccak(signature(entry).encode()).hex()


def encode_call(entry: dict[str, Any], args: Sequence[Any]) -> bytes:
    """Calldata for a function ABI entry: selector + ABI-encoded ``args``."""
    types = [abi_type(p) for p in entry.get("inputs", [])]
    if len(types) != len(args):
        raise DevChainError(f"{signature(entry)} takes {len(types)} arguments, got {len(args)}")
    return function_selector(entry) + abi_encode(types, list(args))


def decode_revert(data: bytes) -> str | None:
    """Reason of ``Error(string)`` / ``Panic(uint256)`` revert data; None when there is none."""
    if data[:4] == ERROR_SELECTOR:
        try:
            return str(abi_decode(["string"], data[4:])[0])
        except Exception:
            return None
    if data[:4] == PANIC_SELECTOR and len(data) >= 36:
        return f"Panic(0x{int.from_bytes(data[4:36], 'big'):x})"
    return None


def artifacts_dir() -> Path:
    return repo_root() / "tests" / "contracts" / "artifacts"


@cache
def _load_artifact_cached(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


def load_artifact(name: str) -> dict[str, Any]:
    """The committed artifact ``tests/contracts/artifacts/<name>.json`` (abi, bytecode, ...)."""
    path = artifacts_dir() / f"{name}.json"
    if not path.exists():
        raise DevChainError(f"no artifact {path} "
                            "(run `node scripts/compile_contracts.mjs` after adding a contract)")
    return _load_artifact_cached(str(path))


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _unhex(s: str | None) -> bytes:
    if not s:
        return b""
    return bytes.fromhex(s[2:] if s.startswith("0x") else s)


def _block_tag(block: int | str) -> str:
    return hex(block) if isinstance(block, int) else block


# ----- contracts -----

@dataclass(frozen=True)
class Contract:
    """A deployed contract: lower-case ``address``, its ``abi`` and artifact ``name``."""

    address: str
    abi: list[dict[str, Any]] = field(repr=False)
    name: str

    def function(self, fn: str, nargs: int | None = None) -> dict[str, Any]:
        """The ABI entry of function ``fn`` (by name, or full signature ``fn(uint256,...)``);
        overloads are told apart by ``nargs``."""
        entries = [e for e in self.abi if e.get("type") == "function"
                   and (e["name"] == fn or signature(e) == fn)]
        if nargs is not None and len(entries) > 1:
            entries = [e for e in entries if len(e.get("inputs", [])) == nargs]
        if len(entries) != 1:
            what = "no" if not entries else "ambiguous"
            raise DevChainError(f"{self.name}: {what} function {fn!r}"
                                + (f" with {nargs} arguments" if nargs is not None else ""))
        return entries[0]

    def event(self, name: str) -> dict[str, Any]:
        """The ABI entry of event ``name`` (by name or full signature)."""
        entries = [e for e in self.abi if e.get("type") == "event"
                   and (e["name"] == name or signature(e) == name)]
        if len(entries) != 1:
            what = "no" if not entries else "ambiguous"
            raise DevChainError(f"{self.name}: {what} event {name!r}")
        return entries[0]

    def topic(self, event: str) -> str:
        """topic0 of one of this contract's events."""
        return event_topic(self.event(event))

    def calldata(self, fn: str, *args: Any) -> bytes:
        return encode_call(self.function(fn, len(args)), args)

    def decode_log(self, log: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(event name, {param: value}) of a raw ``eth_getLogs`` log emitted by this ABI.
        Indexed dynamic values (string/bytes/arrays) come back as their 32-byte topic hash."""
        topic0 = log["topics"][0]
        for e in self.abi:
            if e.get("type") == "event" and not e.get("anonymous") and event_topic(e) == topic0:
                break
        else:
            raise DevChainError(f"{self.name}: no event with topic0 {topic0}")
        indexed = [p for p in e["inputs"] if p.get("indexed")]
        plain = [p for p in e["inputs"] if not p.get("indexed")]
        values: dict[str, Any] = {}
        for p, t in zip(indexed, log["topics"][1:], strict=True):
            ty = abi_type(p)
            dynamic = ty in ("string", "bytes") or ty.endswith("]") or ty.startswith("(")
            values[p["name"]] = _unhex(t) if dynamic else abi_decode([ty], _unhex(t))[0]
        decoded = abi_decode([abi_type(p) for p in plain], _unhex(log["data"]))
        values.update({p["name"]: v for p, v in zip(plain, decoded, strict=True)})
        return e["name"], {p["name"]: values[p["name"]] for p in e["inputs"]}


# ----- the chain -----

class DevChain:
    """JSON-RPC driver for an anvil node at ``url`` (see module docstring)."""

    def __init__(self, url: str, *, timeout: float = 120.0, batch_size: int = 200):
        self.url = url
        self.batch_size = batch_size
        self._client = httpx.Client(timeout=timeout)
        self._id = 0
        self.accounts: list[str] = [str(a).lower() for a in self._list(self.rpc("eth_accounts"))]
        if not self.accounts:
            raise DevChainError(f"{url} has no unlocked accounts (is it anvil?)")
        self.default_sender = self.accounts[0]
        try:
            self._automine = bool(self.rpc("anvil_getAutomine"))
        except DevChainError:
            self._automine = True

    # -- plumbing --

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DevChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _list(x: object) -> list[Any]:
        if not isinstance(x, list):
            raise DevChainError(f"expected a JSON list, got {x!r}")
        return x

    def _post(self, body: object) -> Any:
        try:
            r = self._client.post(self.url, json=body)
        except httpx.TransportError as e:
            raise DevChainError(f"{self.url}: {type(e).__name__}: {e}") from e
        if r.status_code != 200:
            raise DevChainError(f"{self.url}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    def _next_id(self) -> int:
        self._id += 1
        return self._id

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        """One JSON-RPC call; a JSON-RPC error raises :class:`DevChainError` (or
        :class:`TxReverted` when it carries revert data)."""
        doc = self._post({"jsonrpc": "2.0", "id": self._next_id(), "method": method,
                          "params": list(params)})
        if "error" in doc:
            raise self._rpc_error(method, doc["error"])
        return doc.get("result")

    def rpc_batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Many calls in JSON-RPC batches of ``batch_size``; results in order. The first error
        raises (after the whole batch it belongs to was processed by the node)."""
        out: list[Any] = []
        for start in range(0, len(calls), self.batch_size):
            chunk = calls[start:start + self.batch_size]
            first = self._id + 1
            body = [{"jsonrpc": "2.0", "id": self._next_id(), "method": m, "params": list(p)}
                    for m, p in chunk]
            docs = self._list(self._post(body))
            by_id = {d.get("id"): d for d in docs}
            for i, (m, _) in enumerate(chunk):
                d = by_id.get(first + i)
                if d is None:
                    raise DevChainError(f"batch: no answer for {m} (request {start + i})")
                if "error" in d:
                    raise self._rpc_error(f"{m} (request {start + i} of the batch)", d["error"])
                out.append(d.get("result"))
        return out

    @staticmethod
    def _rpc_error(method: str, err: dict[str, Any]) -> DevChainError:
        message = str(err.get("message", err))
        data = err.get("data")
        raw = _unhex(data) if isinstance(data, str) and data.startswith("0x") else b""
        if raw or "revert" in message.lower():
            reason = decode_revert(raw)
            if reason is None and "execution reverted: " in message:
                reason = message.split("execution reverted: ", 1)[1]
            return TxReverted(f"{method} reverted: {reason or message}", reason, raw)
        return DevChainError(f"{method}: {message} (code {err.get('code')})")

    # -- transactions --

    def tx_request(self, contract: Contract | None, fn: str | bytes, *args: Any,
                   sender: str | None = None, value: int = 0,
                   gas: int | None = None) -> dict[str, Any]:
        """The ``eth_sendTransaction`` object for ``contract.fn(*args)`` (also usable in
        :meth:`reorg`). ``fn`` may be raw calldata bytes; ``contract=None`` deploys ``fn`` bytes."""
        data = fn if isinstance(fn, bytes) else self._need(contract).calldata(fn, *args)
        tx: dict[str, Any] = {"from": sender or self.default_sender, "data": _hex(data)}
        if contract is not None:
            tx["to"] = contract.address
        if value:
            tx["value"] = hex(value)
        if gas is not None:
            tx["gas"] = hex(gas)
        return tx

    @staticmethod
    def _need(contract: Contract | None) -> Contract:
        if contract is None:
            raise DevChainError("a function name needs a contract")
        return contract

    def deploy(self, artifact: str, *args: Any, sender: str | None = None,
               value: int = 0) -> Contract:
        """Deploy ``tests/contracts/artifacts/<artifact>.json`` with constructor ``args``."""
        doc = load_artifact(artifact)
        code = _unhex(doc["bytecode"])
        if not code:
            raise DevChainError(f"{artifact} is abstract or an interface: no creation bytecode")
        ctor: dict[str, Any] = next(
            (e for e in doc["abi"] if e.get("type") == "constructor"), {"inputs": []})
        types = [abi_type(p) for p in ctor["inputs"]]
        if len(types) != len(args):
            raise DevChainError(
                f"{artifact} constructor takes {len(types)} arguments, got {len(args)}")
        tx = self.tx_request(None, code + abi_encode(types, list(args)), sender=sender, value=value)
        receipt = self._wait_receipt(str(self.rpc("eth_sendTransaction", [tx])))
        if receipt is None:
            raise DevChainError(f"deploy {artifact}: not mined (automine is off: call mine())")
        if int(receipt["status"], 16) != 1 or not receipt.get("contractAddress"):
            raise DevChainError(f"deploy {artifact} failed: {receipt}")
        address = str(receipt["contractAddress"]).lower()
        return Contract(address=address, abi=doc["abi"], name=artifact)

    def at(self, artifact: str, address: str) -> Contract:
        """A :class:`Contract` handle for an already deployed ``artifact`` at ``address``."""
        return Contract(address=address.lower(), abi=load_artifact(artifact)["abi"], name=artifact)

    def send(self, contract: Contract, fn: str, *args: Any, sender: str | None = None,
             value: int = 0, gas: int | None = None, wait: bool = True) -> str:
        """Send ``contract.fn(*args)``; returns the tx hash. With ``wait`` (and automine on) waits
        for the receipt. A revert raises :class:`TxReverted` with the decoded reason: anvil
        rejects the transaction while estimating gas; with an explicit ``gas`` it is mined
        with status 0 and the reason is recovered by replaying it as a call."""
        tx = self.tx_request(contract, fn, *args, sender=sender, value=value, gas=gas)
        tx_hash = str(self.rpc("eth_sendTransaction", [tx]))
        if wait:
            receipt = self._wait_receipt(tx_hash)
            if receipt is not None and int(receipt["status"], 16) != 1:
                raise self._explain_failure(tx, receipt, f"{contract.name}.{fn}")
        return tx_hash

    def send_many(self, txs: Iterable[tuple[Any, ...]], *, sender: str | None = None,
                  gas: int = 2_000_000, per_block: int | None = None,
                  check: bool = True) -> list[str]:
        """Send many transactions fast and mine them; returns their hashes in order.

        ``txs`` items are ``(contract, fn, args)`` or ``(contract, fn, args, sender)``. They are
        fired as ``eth_sendTransaction`` in JSON-RPC batches with explicit nonces and a fixed
        ``gas`` (no estimation), with automine paused: anvil serves a batch concurrently, and
        with automine on, a transaction that overtakes its predecessor can stay "queued"
        forever (seen with anvil 1.7.1). The blocks are then mined explicitly:

        * ``per_block=None``: as many transactions per block as the block gas limit allows
          (``gas`` counts per transaction: 500 per block with anvil's 1e9 limit in
          :class:`~ingest.devnet.Anvil`); if automine was already off, nothing is mined (the
          caller mines, e.g. with :meth:`mine`).
        * ``per_block=k``: exactly ``k`` transactions per mined block (use
          :meth:`set_next_timestamp` or ``mine(n, interval)`` in between calls to control time).

        Automine is restored afterwards. With ``check`` every receipt is fetched (one batch) and
        the first failed transaction raises :class:`TxReverted` with its reason (reverting
        transactions are mined with status 0 because gas is not estimated).
        """
        reqs: list[dict[str, Any]] = []
        for item in txs:
            contract, fn, args = item[0], item[1], tuple(item[2])
            who = item[3] if len(item) > 3 and item[3] else sender
            reqs.append(self.tx_request(contract, fn, *args, sender=who, gas=gas))
        if not reqs:
            return []
        if per_block is not None and per_block < 1:
            raise DevChainError(f"per_block must be >= 1, got {per_block}")
        nonces: dict[str, int] = {}
        for tx in reqs:
            who = tx["from"] = str(tx["from"]).lower()
            if who not in nonces:
                nonces[who] = int(self.rpc("eth_getTransactionCount", [who, "pending"]), 16)
            tx["nonce"] = hex(nonces[who])
            nonces[who] += 1
        sends = [("eth_sendTransaction", [t]) for t in reqs]
        was_automine = self._automine
        if per_block is None and not was_automine:
            return [str(h) for h in self.rpc_batch(sends)]
        hashes: list[str] = []
        fits = (per_block or 1) * gas <= int(self.block()["gasLimit"], 16)
        if was_automine:
            self.set_automine(False)
        try:
            step = per_block or len(sends)
            for start in range(0, len(sends), step):
                chunk = [str(h) for h in self.rpc_batch(sends[start:start + step])]
                hashes += chunk
                if per_block is not None and fits:
                    self.mine()
                else:
                    self._mine_until(chunk[-1], max_blocks=len(chunk) + 1)
        finally:
            if was_automine:
                self.set_automine(True)
        if check:
            receipts = self.rpc_batch([("eth_getTransactionReceipt", [h]) for h in hashes])
            for tx, r in zip(reqs, receipts, strict=True):
                if r is None:
                    raise DevChainError(f"tx {tx} not mined although a later one was")
                if int(r["status"], 16) != 1:
                    raise self._explain_failure(tx, r, "send_many")
        return hashes

    def _mine_until(self, tx_hash: str, max_blocks: int) -> None:
        """Mine blocks one at a time until ``tx_hash`` is included (automine off)."""
        for _ in range(max_blocks):
            self.mine()
            if self.receipt(tx_hash) is not None:
                return
            status = self.rpc("txpool_status")
            if int(status["pending"], 16) == 0:
                raise DevChainError(f"tx {tx_hash} cannot be mined: nothing pending, "
                                    f"{int(status['queued'], 16)} queued (nonce gap?)")
        raise DevChainError(f"tx {tx_hash} not mined after {max_blocks} blocks")

    def _explain_failure(self, tx: dict[str, Any], receipt: dict[str, Any],
                         what: str) -> TxReverted:
        call = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")}
        parent = hex(int(receipt["blockNumber"], 16) - 1)
        try:
            self.rpc("eth_call", [call, parent])
        except TxReverted as e:
            return TxReverted(f"{what} reverted in tx {receipt['transactionHash']}: {e.reason}",
                              e.reason, e.data)
        except DevChainError:
            pass
        return TxReverted(f"{what} failed in tx {receipt['transactionHash']} (status 0)", None)

    def _wait_receipt(self, tx_hash: str, timeout: float = 120.0) -> dict[str, Any] | None:
        """The receipt, polled until mined. None right away when automine is off (the caller
        mines later)."""
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return dict(receipt)
            if not self._automine:
                return None
            if time.monotonic() > deadline:
                raise DevChainError(f"tx {tx_hash} not mined within {timeout} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        result = self.rpc("eth_getTransactionReceipt", [tx_hash])
        return dict(result) if result is not None else None

    # -- reads --

    def call(self, contract: Contract, fn: str, *args: Any, block: int | str = "latest",
             sender: str | None = None) -> tuple[Any, ...]:
        """``eth_call`` of a function; the outputs decoded as a tuple. Reverts raise
        :class:`TxReverted`."""
        entry = contract.function(fn, len(args))
        tx = {"from": sender or self.default_sender, "to": contract.address,
              "data": _hex(encode_call(entry, args))}
        raw = _unhex(self.rpc("eth_call", [tx, _block_tag(block)]))
        types = [abi_type(p) for p in entry.get("outputs", [])]
        return tuple(abi_decode(types, raw)) if types else ()

    def get_logs(self, address: str | Sequence[str] | None = None,
                 topics: Sequence[Any] | None = None, from_block: int | str = 0,
                 to_block: int | str = "latest", block_hash: str | None = None
                 ) -> list[dict[str, Any]]:
        """Raw ``eth_getLogs`` (anvil has no range limit)."""
        flt: dict[str, Any] = {}
        if block_hash is not None:
            flt["blockHash"] = block_hash
        else:
            flt["fromBlock"], flt["toBlock"] = _block_tag(from_block), _block_tag(to_block)
        if address is not None:
            flt["address"] = address if isinstance(address, str) else list(address)
        if topics is not None:
            flt["topics"] = list(topics)
        return [dict(x) for x in self._list(self.rpc("eth_getLogs", [flt]))]

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def block(self, block: int | str = "latest") -> dict[str, Any]:
        result = self.rpc("eth_getBlockByNumber", [_block_tag(block), False])
        if result is None:
            raise DevChainError(f"no block {block}")
        return dict(result)

    # -- anvil controls --

    def mine(self, blocks: int = 1, interval_s: int | None = None) -> None:
        """Mine ``blocks`` blocks (``anvil_mine``), ``interval_s`` seconds apart if given."""
        params: list[Any] = [hex(blocks)]
        if interval_s is not None:
            params.append(hex(interval_s))
        self.rpc("anvil_mine", params)

    def set_next_timestamp(self, ts: int) -> None:
        self.rpc("evm_setNextBlockTimestamp", [ts])

    def increase_time(self, seconds: int) -> None:
        self.rpc("evm_increaseTime", [seconds])

    def set_automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", [on])
        self._automine = on

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snap: str) -> None:
        if not self.rpc("evm_revert", [snap]):
            raise DevChainError(f"evm_revert({snap}) failed (unknown or already used snapshot)")

    def reorg(self, depth: int, txs: Sequence[tuple[dict[str, Any], int]] = ()) -> None:
        """Replace the last ``depth`` blocks (head height unchanged, new hashes); ``txs`` are
        ``(tx_request, block_offset)`` pairs included in the new blocks (see :meth:`tx_request`).
        anvil only accepts the positional form ``[depth, [[tx, offset], ...]]``."""
        self.rpc("anvil_reorg", [depth, [[dict(tx), int(off)] for tx, off in txs]])
