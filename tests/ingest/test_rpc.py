"""JsonRpcClient, HttpTransport and redaction, against a real anvil node.

Every answer the client is judged on comes from a real node: a module-scoped anvil chain with a
hand-assembled contract that emits real logs. Faults that a healthy local node never produces
(429s, 5xx, timeouts, truncated bodies, shuffled or incomplete batches, providers' limit
errors) are injected by :class:`ScriptedTransport`, a fake that sits between the client and a
real :class:`HttpTransport` to that node. Each test checks that the client's result equals the
fault-free answer of the same node, or that the right typed error is raised after the retries.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import string
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.devnet import Anvil, anvil_binary
from ingest.errors import (
    ChainIdMismatch,
    ConfigError,
    RangeTooLarge,
    RpcHttpError,
    RpcResponseError,
    RpcTransportError,
)
from ingest.redact import redact_text, redact_url
from ingest.rpc import JsonRpcClient
from ingest.transports import (
    HttpResponse,
    HttpTransport,
    Transport,
    TransportConnectError,
    TransportTimeout,
)

# --------------------------------------------------------------------------- the chain

# Runtime: LOG1(memory[0:calldatasize], topic0 = calldata[0:32]) of a copy of the calldata.
#   36 CALLDATASIZE  6000 PUSH1 0  6000 PUSH1 0  37 CALLDATACOPY     mem[0:cds] = calldata
#   6000 PUSH1 0  35 CALLDATALOAD                                    topic0 = calldata[0:32]
#   36 CALLDATASIZE  6000 PUSH1 0  a1 LOG1  00 STOP                  log(mem[0:cds], topic0)
RUNTIME = "366000600037600035366000a100"
# Init: CODECOPY the 14-byte runtime (at code offset 11) to memory 0 and RETURN it.
#   600e PUSH1 14  80 DUP1  600b PUSH1 11  6000 PUSH1 0  39 CODECOPY  6000 PUSH1 0  f3 RETURN
INIT = "600e80600b6000396000f3"
TOPIC_A = "0x" + "aa".rjust(64, "0")
TOPIC_B = "0x" + "bb".rjust(64, "0")
LOGS_PER_BLOCK = (1, 3, 2, 1, 3, 2)  # blocks with logs; each is followed by EMPTY_GAP blocks
EMPTY_GAP = 3

needs_anvil = pytest.mark.anvil


@dataclass(frozen=True)
class Chain:
    """A finished dev chain and the fault-free answers of its node (via ``Anvil.rpc``)."""

    url: str
    address: str
    head: int
    logs: list[dict[str, Any]]
    blocks: list[dict[str, Any]]


def _receipt(a: Anvil, tx: str) -> dict[str, Any]:
    for _ in range(500):
        receipt = a.rpc("eth_getTransactionReceipt", [tx])
        if receipt:
            assert isinstance(receipt, dict)
            return receipt
        time.sleep(0.01)
    raise AssertionError(f"no receipt for {tx}")


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    try:
        anvil_binary()
    except ConfigError as exc:
        pytest.skip(str(exc))
    with Anvil() as a:
        sender = a.rpc("eth_accounts")[0]  # type: ignore[index]
        deploy = a.rpc("eth_sendTransaction", [{"from": sender, "data": "0x" + INIT + RUNTIME}])
        address = _receipt(a, str(deploy))["contractAddress"]
        a.rpc("evm_setAutomine", [False])
        n = 0
        for count in LOGS_PER_BLOCK:
            for _ in range(count):
                topic = TOPIC_A if n % 3 else TOPIC_B
                a.rpc("eth_sendTransaction", [{"from": sender, "to": address, "gas": "0x30000",
                                               "data": topic + f"{n:04x}"}])
                n += 1
            a.rpc("evm_mine", [])
            a.rpc("anvil_mine", [hex(EMPTY_GAP), "0x1"])
        a.rpc("evm_setAutomine", [True])
        head = int(str(a.rpc("eth_blockNumber")), 16)
        logs = a.rpc("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(head),
                                      "address": address}])
        assert isinstance(logs, list) and len(logs) == sum(LOGS_PER_BLOCK)
        blocks = [a.rpc("eth_getBlockByNumber", [hex(b), False]) for b in range(head + 1)]
        yield Chain(a.url, address, head, logs, blocks)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the fake transport

Forward = Callable[[], HttpResponse]
Action = Callable[[Any, Forward], HttpResponse]


@dataclass
class Fault:
    """Apply ``action`` to the next ``times`` requests that match (method, batch, ``when``)."""

    action: Action
    method: str | None = None
    times: float = 1
    batch: bool | None = None
    when: Callable[[Any], bool] | None = None
    hits: int = 0

    def matches(self, request: Any) -> bool:
        if self.hits >= self.times:
            return False
        items = request if isinstance(request, list) else [request]
        if self.batch is not None and isinstance(request, list) != self.batch:
            return False
        if self.method is not None and all(i["method"] != self.method for i in items):
            return False
        return self.when is None or self.when(request)


class ScriptedTransport:
    """A FAKE transport, used only to inject faults that a real node cannot produce.

    It forwards every request to a real anvil node through a real :class:`HttpTransport`,
    except the requests a :class:`Fault` in its script matches: those get the fault's answer
    (a canned HTTP status, a raised transport error, or the node's real answer tampered with).
    It records every request body it was given, decoded, in :attr:`requests`.
    """

    def __init__(self, url: str, faults: list[Fault] | tuple[Fault, ...] = ()):
        self.real = HttpTransport(url)
        self.label = "scripted+" + self.real.label
        self.faults = list(faults)
        self.requests: list[Any] = []
        self._lock = threading.Lock()

    def send(self, body: bytes, *, timeout: float) -> HttpResponse:
        request = orjson.loads(body)
        with self._lock:
            self.requests.append(request)
            fault = next((f for f in self.faults if f.matches(request)), None)
            if fault is not None:
                fault.hits += 1
        forward: Forward = lambda: self.real.send(body, timeout=timeout)  # noqa: E731
        return fault.action(request, forward) if fault else forward()

    def close(self) -> None:
        self.real.close()

    def log_widths(self) -> list[int]:
        """Block widths of the eth_getLogs requests seen, in order."""
        return [int(r["params"][0]["toBlock"], 16) - int(r["params"][0]["fromBlock"], 16) + 1
                for r in self.requests if isinstance(r, dict) and r["method"] == "eth_getLogs"]


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Action:
    return lambda request, forward: HttpResponse(code, headers or {}, body)


def raise_(make: Callable[[], Exception]) -> Action:
    def action(request: Any, forward: Forward) -> HttpResponse:
        raise make()
    return action


def truncated(request: Any, forward: Forward) -> HttpResponse:
    r = forward()
    return HttpResponse(r.status, r.headers, r.body[: len(r.body) // 2])


def tampered(edit: Callable[[Any, Any], Any]) -> Action:
    """The node's real answer, decoded, passed through ``edit(request, doc)`` and re-encoded."""
    def action(request: Any, forward: Forward) -> HttpResponse:
        r = forward()
        return HttpResponse(r.status, r.headers, orjson.dumps(edit(request, orjson.loads(r.body))))
    return action


def rpc_error(code: int | None, message: str, data: Any = None, http: int = 200,
              whole_batch: bool = False) -> Action:
    """A JSON-RPC error answer: to the lone call, to the first call, or (id null) the batch."""
    def action(request: Any, forward: Forward) -> HttpResponse:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        if whole_batch:
            doc: Any = {"jsonrpc": "2.0", "id": None, "error": error}
        elif isinstance(request, list):
            doc = [{"jsonrpc": "2.0", "id": request[0]["id"], "error": error}]
        else:
            doc = {"jsonrpc": "2.0", "id": request["id"], "error": error}
        return HttpResponse(http, {"content-type": "application/json"}, orjson.dumps(doc))
    return action


@pytest.fixture
def make_client(chain: Chain) -> Iterator[Callable[..., tuple[JsonRpcClient, ScriptedTransport,
                                                                list[float]]]]:
    """Factory: a client over a ScriptedTransport to the chain, with a recording ``sleep``."""
    made: list[JsonRpcClient] = []

    def factory(*faults: Fault, **options: Any
                ) -> tuple[JsonRpcClient, ScriptedTransport, list[float]]:
        transport = ScriptedTransport(chain.url, faults)
        sleeps: list[float] = []
        options = {"backoff_base": 0.001, "seed": 7, "max_retries": 4, **options}
        client = JsonRpcClient(transport, sleep=sleeps.append, **options)
        made.append(client)
        return client, transport, sleeps

    yield factory
    for client in made:
        client.close()


def block_calls(chain: Chain) -> list[tuple[str, list[Any]]]:
    return [("eth_getBlockByNumber", [hex(b), False]) for b in range(chain.head + 1)]


# --------------------------------------------------------------------------- fault-free answers


@needs_anvil
def test_transports_satisfy_the_protocol(chain: Chain) -> None:
    with HttpTransport(chain.url) as real:
        assert isinstance(real, Transport)
        assert real.label == chain.url  # nothing to hide in http://127.0.0.1:<port>
    fake = ScriptedTransport(chain.url)
    assert isinstance(fake, Transport)
    fake.close()


@needs_anvil
def test_call_batch_and_chain_id_equal_the_node(make_client: Any, chain: Chain) -> None:
    client, transport, sleeps = make_client(max_batch=4, concurrency=3)
    assert client.call("eth_getBlockByNumber", [hex(2), False]) == chain.blocks[2]
    assert client.batch(block_calls(chain)) == chain.blocks
    assert client.batch([]) == []
    assert client.chain_id() == 31337
    client.check_chain_id(31337)
    chunks = -(-(chain.head + 1) // 4)
    assert client.stats.requests == 1 + chunks + 2
    assert client.stats.calls == 1 + (chain.head + 1) + 2
    assert client.stats.retries == 0 and sleeps == []
    assert client.stats.bytes_received > 0
    assert all(len(r) <= 4 for r in transport.requests[1:1 + chunks] if isinstance(r, list))


@needs_anvil
def test_wrong_chain_id_raises_naming_both_ids(make_client: Any) -> None:
    client, transport, _ = make_client()
    with pytest.raises(ChainIdMismatch) as info:
        client.check_chain_id(1)
    assert "31337" in str(info.value) and " 1" in str(info.value)
    assert transport.label in str(info.value)


@needs_anvil
def test_get_logs_equal_the_node_sorted(make_client: Any, chain: Chain) -> None:
    client, _, _ = make_client()
    logs = client.get_logs(0, chain.head, [chain.address], [[TOPIC_A, TOPIC_B]])
    assert logs == chain.logs
    keys = [(int(g["blockNumber"], 16), int(g["logIndex"], 16)) for g in logs]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    only_a = client.get_logs(0, chain.head, [chain.address], [[TOPIC_A]])
    assert only_a == [g for g in chain.logs if g["topics"][0] == TOPIC_A] and only_a
    assert client.get_logs(0, chain.head, [], []) == chain.logs  # no filter: only our contract
    first = int(chain.logs[0]["blockNumber"], 16)
    assert client.get_logs(first, first, [chain.address], [None]) == [
        g for g in chain.logs if int(g["blockNumber"], 16) == first]


@needs_anvil
def test_get_logs_in_small_spans_equal_one_span(make_client: Any, chain: Chain) -> None:
    client, transport, _ = make_client(logs_max_span=2)
    assert client.get_logs(0, chain.head, [chain.address], [[TOPIC_A, TOPIC_B]]) == chain.logs
    assert transport.log_widths() == [2] * ((chain.head + 1) // 2) + [1] * ((chain.head + 1) % 2)
    assert client.stats.splits == 0


def test_bad_arguments_are_config_errors() -> None:
    transport = ScriptedTransport("http://127.0.0.1:9")
    with pytest.raises(ConfigError):
        JsonRpcClient(transport, max_batch=0)
    with pytest.raises(ConfigError):
        JsonRpcClient(transport, rps=0)
    client = JsonRpcClient(transport)
    with pytest.raises(ConfigError):
        client.get_logs(5, 4, [], [])
    with pytest.raises(ConfigError):
        client.call("", [])
    client.close()


@needs_anvil
def test_log_filters_that_a_node_would_read_otherwise_are_config_errors(make_client: Any,
                                                                        chain: Chain) -> None:
    # An empty list of accepted values at a topic position accepts nothing, but a node reads
    # it as a wildcard (as geth does): every log of the address came back. A bare string where
    # a list belongs was sent one character per accepted value.
    client, transport, _ = make_client()
    for addresses, topics in ([chain.address], [[]]), ([chain.address], [None, []]), \
            ([chain.address], [TOPIC_A]), (chain.address, []):
        with pytest.raises(ConfigError):
            client.get_logs(0, chain.head, addresses, topics)  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            client.get_logs_raw(0, chain.head, addresses, topics)  # type: ignore[arg-type]
    assert transport.requests == []


# --------------------------------------------------------------------------- HTTP faults


@needs_anvil
def test_429_waits_for_retry_after_seconds(make_client: Any, chain: Chain) -> None:
    client, transport, sleeps = make_client(
        Fault(status(429, {"retry-after": "3"}, b"Too Many Requests"), times=2))
    assert client.call("eth_getBlockByNumber", [hex(3), False]) == chain.blocks[3]
    assert sleeps == [3.0, 3.0]
    assert client.stats.retries == 2 and len(transport.requests) == 3


@needs_anvil
def test_429_waits_for_retry_after_http_date(make_client: Any, chain: Chain) -> None:
    when = email.utils.formatdate(time.time() + 10, usegmt=True)
    client, _, sleeps = make_client(Fault(status(429, {"retry-after": when})))
    assert client.call("eth_getBlockByNumber", [hex(3), False]) == chain.blocks[3]
    assert len(sleeps) == 1 and 8.0 <= sleeps[0] <= 10.0


@needs_anvil
def test_retry_after_is_capped_by_backoff_max(make_client: Any, chain: Chain) -> None:
    client, _, sleeps = make_client(Fault(status(429, {"retry-after": "120"})), backoff_max=5.0)
    assert client.call("eth_getBlockByNumber", [hex(3), False]) == chain.blocks[3]
    assert sleeps == [5.0]


@needs_anvil
def test_429_waits_for_infuras_backoff_seconds(make_client: Any, chain: Chain) -> None:
    # Infura rate-limits with HTTP 429 and a JSON-RPC error whose data says how long to wait
    # (no Retry-After): the wait it asks for, not a jitter draw of a few milliseconds
    data = {"rate": {"allowed_rps": 10, "backoff_seconds": 2, "current_rps": 13.3},
            "see": "https://infura.io/dashboard"}
    client, _, sleeps = make_client(
        Fault(rpc_error(-32005, "project ID request rate exceeded", data, http=429)),
        Fault(rpc_error(-32005, "project ID request rate exceeded", data, http=429,
                        whole_batch=True), batch=True))
    assert client.call("eth_getBlockByNumber", [hex(3), False]) == chain.blocks[3]
    assert client.batch(block_calls(chain)[:3]) == chain.blocks[:3]
    assert sleeps == [2.0, 2.0]
    body = orjson.dumps({"jsonrpc": "2.0", "id": None, "error": {
        "code": -32005, "message": "project ID request rate exceeded", "data": data}})
    client, _, sleeps = make_client(Fault(status(429, {"retry-after": "3"}, body)))
    assert client.call("eth_getBlockByNumber", [hex(3), False]) == chain.blocks[3]
    assert sleeps == [3.0]  # a Retry-After header wins over the body


@needs_anvil
@pytest.mark.parametrize("value", ["-5", "-0.5", "soon", "1e400"])
def test_invalid_retry_after_falls_back_to_the_backoff(make_client: Any, chain: Chain,
                                                       value: str) -> None:
    # delta-seconds is 1*DIGIT: a negative number is as invalid as a word, and must not turn
    # into "retry at once" (no wait at all, every retry hammering a rate-limiting provider)
    client, transport, sleeps = make_client(
        Fault(status(429, {"retry-after": value}, b"Too Many Requests"), times=2))
    assert client.call("eth_getBlockByNumber", [hex(3), False]) == chain.blocks[3]
    assert len(sleeps) == 2 and all(0 < s <= 0.002 for s in sleeps)  # the jitter draws
    assert len(transport.requests) == 3


@needs_anvil
@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors_are_retried(make_client: Any, chain: Chain, code: int) -> None:
    client, transport, sleeps = make_client(Fault(status(code, {}, b"<html>oops</html>"),
                                                  times=3), max_batch=5)
    assert client.batch(block_calls(chain)) == chain.blocks
    assert client.stats.retries == 3 and len(sleeps) == 3
    assert all(0 <= s <= 0.001 * 2 ** i for i, s in enumerate(sleeps))  # full jitter bounds


@needs_anvil
@pytest.mark.parametrize("code", [507, 520, 521, 522, 523, 524, 529, 598, 599])
def test_other_5xx_are_retried_too(make_client: Any, chain: Chain, code: int) -> None:
    # Cloudflare, in front of many endpoints, answers 520-524 ("origin timed out", ...) for
    # passing trouble: the run stopped at the first one
    client, transport, sleeps = make_client(Fault(status(code, {}, b"<html>oops</html>"),
                                                  times=2))
    assert client.call("eth_getBlockByNumber", [hex(3), False]) == chain.blocks[3]
    assert client.stats.retries == 2 and len(sleeps) == 2 and len(transport.requests) == 3


@needs_anvil
@pytest.mark.parametrize("code", [501, 505])
def test_5xx_that_say_never_are_not_retried(make_client: Any, code: int) -> None:
    client, transport, sleeps = make_client(Fault(status(code, {}, b"<html>no</html>")))
    with pytest.raises(RpcHttpError) as info:
        client.call("eth_blockNumber", [])
    assert info.value.status == code and sleeps == [] and len(transport.requests) == 1


@needs_anvil
def test_persistent_503_raises_http_error_after_max_retries(make_client: Any) -> None:
    client, transport, sleeps = make_client(Fault(status(503), times=float("inf")),
                                            max_retries=3)
    with pytest.raises(RpcHttpError) as info:
        client.call("eth_blockNumber", [])
    assert info.value.status == 503 and info.value.method == "eth_blockNumber"
    assert transport.label in str(info.value)
    assert len(transport.requests) == 4 and len(sleeps) == 3
    assert "gave up after 4 attempts" in "".join(traceback.format_exception(info.value))


@needs_anvil
def test_401_is_not_retried(make_client: Any) -> None:
    client, transport, sleeps = make_client(Fault(status(401, {}, b"Unauthorized")))
    with pytest.raises(RpcHttpError) as info:
        client.call("eth_blockNumber", [])
    assert info.value.status == 401 and len(transport.requests) == 1 and sleeps == []


@needs_anvil
def test_401_with_a_json_rpc_body_is_not_retried(make_client: Any, chain: Chain) -> None:
    client, transport, sleeps = make_client(
        Fault(rpc_error(-32600, "Must be authenticated!", http=401, whole_batch=True),
              times=float("inf")))
    with pytest.raises(RpcResponseError) as info:
        client.batch(block_calls(chain)[:4])
    assert info.value.code == -32600 and len(transport.requests) == 1 and sleeps == []
    with pytest.raises(RpcResponseError):
        client.call("eth_blockNumber", [])
    assert len(transport.requests) == 2 and sleeps == []


@needs_anvil
def test_401_with_the_batch_error_in_an_array_is_not_retried(make_client: Any,
                                                             chain: Chain) -> None:
    error = {"code": -32600, "message": "Must be authenticated!"}
    client, transport, sleeps = make_client(Fault(
        status(401, {}, orjson.dumps([{"jsonrpc": "2.0", "id": None, "error": error}])),
        times=float("inf")))
    with pytest.raises(RpcResponseError) as info:
        client.batch(block_calls(chain)[:4])
    assert info.value.code == -32600 and len(transport.requests) == 1 and sleeps == []


@needs_anvil
def test_timeouts_are_retried_then_raised(make_client: Any, chain: Chain) -> None:
    def timeout() -> Exception:
        return TransportTimeout("no answer within 60 s", "scripted")

    client, transport, _ = make_client(Fault(raise_(timeout), times=2))
    assert client.call("eth_getBlockByNumber", [hex(4), False]) == chain.blocks[4]
    assert client.stats.retries == 2

    client, transport, sleeps = make_client(Fault(raise_(timeout), times=float("inf")),
                                            max_retries=2)
    with pytest.raises(TransportTimeout):
        client.call("eth_blockNumber", [])
    assert len(transport.requests) == 3 and len(sleeps) == 2


@needs_anvil
def test_a_call_that_changes_state_is_not_resent_after_an_unknown_outcome(
        make_client: Any) -> None:
    # The request reached the node, which acted on it, and the answer was lost: resending a
    # state-changing call does it twice (a second snapshot here; a second mined block or sent
    # transaction elsewhere) and returns the second one's result as the first's.
    def applied_then_timeout(request: Any, forward: Forward) -> HttpResponse:
        forward()
        raise TransportTimeout("no answer within 60 s", "scripted")

    client, transport, sleeps = make_client(Fault(applied_then_timeout, method="evm_snapshot"))
    with pytest.raises(TransportTimeout) as info:
        client.call("evm_snapshot", [])
    assert len(transport.requests) == 1 and sleeps == []
    assert "not resent" in "".join(traceback.format_exception(info.value))
    # a refusal (429: not acted on) is still retried, and so are reads after a timeout
    client, transport, _ = make_client(Fault(status(429), method="evm_snapshot"),
                                       Fault(applied_then_timeout, method="eth_blockNumber"))
    assert isinstance(client.call("evm_snapshot", []), str) and len(transport.requests) == 2
    assert isinstance(client.call("eth_blockNumber", []), str) and len(transport.requests) == 4


@needs_anvil
def test_a_state_change_left_unknown_is_not_resent_whatever_else_failed(
        make_client: Any) -> None:
    # The batch's answer lacks the snapshot's response (the node took it), and the other call
    # was rate-limited: the round's last error is a refusal, but the snapshot's outcome is
    # still unknown.
    def drop_snapshot_limit_the_rest(request: Any, doc: Any) -> Any:
        snap = next(r["id"] for r in request if r["method"] == "evm_snapshot")
        return [{"jsonrpc": "2.0", "id": d["id"],
                 "error": {"code": -32005, "message": "project ID request rate exceeded"}}
                for d in doc if d["id"] != snap]

    client, transport, _ = make_client(Fault(tampered(drop_snapshot_limit_the_rest), batch=True))
    with pytest.raises(RpcTransportError) as info:
        client.batch([("eth_blockNumber", []), ("evm_snapshot", [])])
    assert len(transport.requests) == 1
    assert "not resent" in "".join(traceback.format_exception(info.value))

    # after a batch-size refusal the calls go out one per request: the snapshot times out
    # after the node took it, then the read is refused with 429
    def applied_then_timeout(request: Any, forward: Forward) -> HttpResponse:
        forward()
        raise TransportTimeout("no answer within 60 s", "scripted")

    client, transport, _ = make_client(
        Fault(status(413), batch=True), Fault(applied_then_timeout, method="evm_snapshot"),
        Fault(status(429), method="eth_blockNumber", batch=False), max_batch=2)
    with pytest.raises(TransportTimeout):
        client.batch([("evm_snapshot", []), ("eth_blockNumber", [])])
    assert [r["method"] for r in transport.requests[1:]] == ["evm_snapshot", "eth_blockNumber"]


@needs_anvil
def test_connect_errors_are_retried(make_client: Any, chain: Chain) -> None:
    client, _, _ = make_client(Fault(raise_(lambda: TransportConnectError("reset", "s")),
                                     times=2, batch=True), max_batch=8)
    assert client.batch(block_calls(chain)) == chain.blocks
    assert client.stats.retries == 2


@needs_anvil
def test_truncated_json_is_retried_then_raised(make_client: Any, chain: Chain) -> None:
    client, _, _ = make_client(Fault(truncated, times=2), max_batch=100)
    assert client.batch(block_calls(chain)) == chain.blocks
    assert client.stats.retries == 2

    client, transport, _ = make_client(Fault(truncated, times=float("inf")), max_retries=2)
    with pytest.raises(RpcTransportError) as info:
        client.get_logs(0, chain.head, [chain.address], [])
    assert "not complete JSON" in str(info.value) and len(transport.requests) == 3


# --------------------------------------------------------------------------- batch faults


@needs_anvil
def test_batch_answered_out_of_order(make_client: Any, chain: Chain) -> None:
    client, _, _ = make_client(Fault(tampered(lambda req, doc: doc[::-1]), times=float("inf"),
                                     batch=True), max_batch=7, concurrency=2)
    assert client.batch(block_calls(chain)) == chain.blocks
    assert client.stats.retries == 0


@needs_anvil
def test_missing_id_resends_only_the_unanswered_call(make_client: Any, chain: Chain) -> None:
    client, transport, sleeps = make_client(
        Fault(tampered(lambda req, doc: [d for d in doc if d["id"] != req[2]["id"]]),
              batch=True), max_batch=100)
    assert client.batch(block_calls(chain)) == chain.blocks
    assert client.stats.retries == 1 and len(sleeps) == 1
    assert transport.requests[-1]["params"] == [hex(2), False]  # resent alone


@needs_anvil
def test_missing_id_forever_raises(make_client: Any, chain: Chain) -> None:
    def forget_block_2(req: Any, doc: Any) -> Any:
        if isinstance(req, list):
            lost = {r["id"] for r in req if r["params"][0] == "0x2"}
            return [d for d in doc if d["id"] not in lost]
        return [] if req["params"][0] == "0x2" else doc

    client, transport, _ = make_client(Fault(tampered(forget_block_2), times=float("inf")),
                                       max_retries=2)
    with pytest.raises(RpcTransportError):
        client.batch(block_calls(chain)[:5])
    assert len(transport.requests) == 3  # the batch, then block 2 alone, twice
    assert transport.requests[-1]["params"] == ["0x2", False]


@needs_anvil
def test_foreign_id_is_a_fault(make_client: Any, chain: Chain) -> None:
    def rename(req: Any, doc: Any) -> Any:
        doc[0]["id"] = 10**9
        return doc

    client, _, _ = make_client(Fault(tampered(rename), batch=True))
    assert client.batch(block_calls(chain)[:6]) == chain.blocks[:6]
    assert client.stats.retries == 1


@needs_anvil
def test_single_object_answer_to_a_batch_is_retried(make_client: Any, chain: Chain) -> None:
    client, _, sleeps = make_client(
        Fault(rpc_error(-32005, "exceeded project rate limit", whole_batch=True,
                        data={"rate": {"allowed_rps": 5, "backoff_seconds": 2,
                                       "current_rps": 5.2}}), batch=True),
        Fault(tampered(lambda req, doc: doc[0]), batch=True))  # a bare object, not a list
    assert client.batch(block_calls(chain)[:6]) == chain.blocks[:6]
    assert client.stats.retries == 2 and sleeps[0] == 2.0


def _geth_response_limit(req: Any, doc: Any) -> Any:
    """geth --rpc.batch-response-max-size: items after the limit get -32003."""
    error = {"code": -32003, "message": "response too large"}
    return [d if i < 2 else {"jsonrpc": "2.0", "id": d["id"], "error": error}
            for i, d in enumerate(sorted(doc, key=lambda d: d["id"]))]


BATCH_LIMITS = {
    "geth": rpc_error(-32600, "batch too large"),
    "geth-response-size": tampered(_geth_response_limit),
    "jsonrpsee": rpc_error(-32010, "The batch request was too large",
                           data="Exceeded max limit of 3", whole_batch=True),
    "erigon": rpc_error(-32600, "batch limit 3 exceeded", whole_batch=True),
    "besu": rpc_error(-32602, "Number of requests in batch exceeds --rpc-max-batch-size.",
                      whole_batch=True),
    "nethermind": rpc_error(-32005, "Batch size limit exceeded", whole_batch=True),
    "http-413": status(413, {}, b"Payload Too Large"),
    # Erigon since it follows JSON-RPC 2.0 section 6 (erigon#17245, #18260): the batch-level
    # error inside an array, with id null
    "erigon-array": lambda request, forward: HttpResponse(200, {}, orjson.dumps([{
        "jsonrpc": "2.0", "id": None, "error": {
            "code": -32000, "message": "batch limit 3 exceeded (can increase by "
            f"--rpc.batch.limit). Requested batch of size: {len(request)}"}}])),
}


@needs_anvil
@pytest.mark.parametrize("provider", sorted(BATCH_LIMITS))
def test_batch_size_refusal_halves_the_batch(make_client: Any, chain: Chain,
                                             provider: str) -> None:
    refuse = Fault(BATCH_LIMITS[provider], batch=True, times=float("inf"),
                   when=lambda req: len(req) > 3)
    client, transport, sleeps = make_client(refuse, max_batch=8, concurrency=3)
    assert client.batch(block_calls(chain)) == chain.blocks
    assert client.max_batch == 2 and client.stats.batch_shrinks >= 2
    assert sleeps == [] and client.stats.retries == 0
    client.batch(block_calls(chain))  # the smaller size sticks
    assert max(len(r) for r in transport.requests[-13:] if isinstance(r, list)) <= 2


# --------------------------------------------------------------------------- JSON-RPC errors

RETRYABLE = {
    "alchemy-cups": (429, "Your app has exceeded its compute units per second capacity. If you "
                          "have retries enabled, you can safely ignore this message. If not, "
                          "check out https://docs.alchemy.com/reference/throughput", None, 200),
    "infura-rate": (-32005, "project ID request rate exceeded",
                    {"see": "https://infura.io/dashboard"}, 429),
    "infura-daily": (-32005, "daily request count exceeded, request rate limited", None, 200),
    "quicknode": (-32007, "15/second request limit reached - reduce calls per second or upgrade "
                          "your account at quicknode.com", None, 200),
    "header-not-found": (-32000, "header not found", None, 200),
    "geth-timeout": (-32002, "request timed out", None, 200),
}


@needs_anvil
@pytest.mark.parametrize("provider", sorted(RETRYABLE))
def test_rate_limit_errors_are_retried(make_client: Any, chain: Chain, provider: str) -> None:
    code, message, data, http = RETRYABLE[provider]
    client, _, sleeps = make_client(Fault(rpc_error(code, message, data, http), times=2))
    assert client.call("eth_getBlockByNumber", [hex(5), False]) == chain.blocks[5]
    assert client.stats.retries == 2 and len(sleeps) == 2


@needs_anvil
def test_per_call_rate_limit_in_a_batch_resends_that_call(make_client: Any,
                                                         chain: Chain) -> None:
    def limit_one(req: Any, doc: Any) -> Any:
        for d in doc:
            if d["id"] == req[1]["id"]:
                del d["result"]
                d["error"] = {"code": -32005, "message": "project ID request rate exceeded",
                              "data": {"rate": {"backoff_seconds": 2}}}
        return doc

    client, transport, sleeps = make_client(Fault(tampered(limit_one), batch=True))
    assert client.batch(block_calls(chain)[:6]) == chain.blocks[:6]
    assert sleeps == [2.0] and transport.requests[-1]["params"] == [hex(1), False]


@needs_anvil
def test_rate_limit_forever_raises_response_error(make_client: Any) -> None:
    client, transport, _ = make_client(
        Fault(rpc_error(429, "Your app has exceeded its compute units per second capacity"),
              times=float("inf")), max_retries=3)
    with pytest.raises(RpcResponseError) as info:
        client.call("eth_blockNumber", [])
    assert info.value.code == 429 and len(transport.requests) == 4


@needs_anvil
def test_real_node_error_is_raised_at_once(make_client: Any, chain: Chain) -> None:
    client, transport, sleeps = make_client()
    with pytest.raises(RpcResponseError) as info:
        client.call("eth_noSuchMethod", [])
    assert info.value.code == -32601 and info.value.method == "eth_noSuchMethod"
    assert transport.label in str(info.value) and sleeps == [] and len(transport.requests) == 1
    with pytest.raises(RpcResponseError):  # no partial batch comes back
        client.batch([*block_calls(chain)[:3], ("eth_noSuchMethod", [])])
    assert client.stats.retries == 0


@needs_anvil
def test_one_failing_chunk_fails_the_whole_batch(make_client: Any, chain: Chain) -> None:
    client, _, _ = make_client(
        Fault(status(503), times=float("inf"),
              when=lambda req: isinstance(req, list) and req[0]["params"][0] == "0x8"),
        max_batch=4, concurrency=4, max_retries=2)
    with pytest.raises(RpcHttpError):
        client.batch(block_calls(chain))


# --------------------------------------------------------------------------- eth_getLogs limits

LIMIT = 3
"""Widest eth_getLogs range, in blocks, that the faked providers below accept."""

# Provider wordings as recorded in public issues, tests and provider docs (see the shapes in
# ingest/rpc.py). Placeholders: {a}/{b} hex and {da}/{db} decimal bounds of the range the
# provider proposes ({n} blocks from the request's start), {w} the refused width, {f}/{t} the
# refused range in decimal. Each entry: code, message, data, HTTP status, whether it carries a
# usable hint.
RANGE_ERRORS: dict[str, tuple[int | None, str, Any, int, bool]] = {
    "alchemy": (-32602, "Log response size exceeded. You can make eth_getLogs requests with up "
                "to a 2K block range and no limit on the response size, or you can request any "
                "block range with a cap of 10K logs in the response. Based on your parameters "
                "and the response size limit, this block range should work: [{a}, {b}]",
                None, 200, True),
    "alchemy-free-tier": (-32600, "Under the Free tier plan, you can make eth_getLogs requests "
                          "with up to a {n} block range. Based on your parameters, this block "
                          "range should work: [{a}, {b}]. Upgrade to PAYG for expanded block "
                          "range.", None, 400, True),
    "alchemy-timeout": (-32000, "Query timeout exceeded. Consider reducing your block range. "
                        "Based on your parameters and the response size limit, this block range "
                        "should work: [{a}, {b}]", None, 400, True),
    "infura-results": (-32005, "query returned more than 10000 results. Try with this block "
                       "range [{a}, {b}].", None, 200, True),
    "infura-results-bare": (-32005, "query returned more than 10000 results", None, 200, False),
    "infura-range": (-32602, "range {w} exceeds limit of {n}", None, 200, True),
    "quicknode": (-32614, "eth_getLogs is limited to a {n} range", None, 413, True),
    # QuickNode's current wording (its docs list it under HTTP 413; also seen with -32602)
    "quicknode-blocks": (-32614, "eth_getLogs and eth_newFilter are limited to a {n} blocks "
                         "range", None, 413, True),
    "quicknode-blocks-200": (-32602, "eth_getLogs and eth_newFilter are limited to a {n} blocks "
                             "range", None, 200, True),
    "1rpc": (-32602, "eth_getLogs is limited to a {n} blocks range", None, 200, True),
    "1rpc-size": (-32602, "response size should not greater than 10000000 bytes", None, 200,
                  False),
    "ankr": (-32600, "block range is too wide", None, 200, False),
    "bsc-publicnode": (-32701, "exceed maximum block range: {n}", None, 200, True),
    "reth-range": (-32602, "query exceeds max block range {n}", None, 200, True),
    "reth-results": (-32602, "query exceeds max results 20000, retry with the range {da}-{db}",
                     None, 200, True),
    "llamarpc": (-32602, "query exceeds max results 20000", None, 200, False),
    "chainstack": (-32602, "Block range limit exceeded.", None, 200, False),
    "cloudflare": (-32047, "Invalid eth_getLogs request. 'fromBlock'-'toBlock' range too large. "
                   "Max range: {n}", None, 200, True),
    "base": (-32000, "block range too large", None, 200, False),
    "optimism": (-32000, "Block range is too large", None, 200, False),
    "optimism-proxyd": (-32020, "backend response too large", None, 200, False),
    "arbitrum": (-32000, "logs matched by query exceeds limit of 10000", None, 200, False),
    "thirdweb": (-32602, "invalid params", "range {w} is bigger than range limit {n}", 200,
                 True),
    "tenderly": (-32602, "invalid params", {"error_id": "4ed94073-0317-4648-a167-107fba5f44b3",
                                            "payload": "range {w} is bigger than range limit {n}"},
                 200, True),
    "drpc": (35, "ranges over {n} blocks are not supported on freetier", None, 200, True),
    "avalanche": (-32000, "requested too many blocks from {f} to {t}, maximum is set to {n}",
                  None, 200, True),
    "coinbase": (-32000, "please limit the query to at most {n} blocks", None, 200, True),
    "scroll": (-32000, "block range is bigger than maxBlockRange", None, 200, False),
    "morph": (-32000, "block range is larger than max block range, block range = {w}, max block "
              "range = {n}", None, 200, True),
    "arc": (-32012, "requested range too large", None, 200, False),
    # a node's query deadline ran out over a wide range: a narrower one may finish in time
    "geth-deadline": (-32000, "context deadline exceeded", None, 200, False),
    "execution-timeout": (-32000, "execution timeout", None, 200, False),
}


def _fill(template: Any, lo: int, hi: int) -> Any:
    values = {"a": hex(lo), "b": hex(lo + LIMIT - 1), "da": lo, "db": lo + LIMIT - 1, "n": LIMIT,
              "w": hi - lo + 1, "f": lo, "t": hi}
    if isinstance(template, str):
        return template.format(**values)
    if isinstance(template, dict):
        return {k: _fill(v, lo, hi) for k, v in template.items()}
    return template


def refuse_wide_logs(code: int | None, message: str, data: Any = None, http: int = 200,
                     limit: int = LIMIT) -> Fault:
    """A provider that refuses eth_getLogs over more than ``limit`` blocks with this error."""
    def wide(request: Any) -> bool:
        p = request["params"][0]
        return int(p["toBlock"], 16) - int(p["fromBlock"], 16) + 1 > limit

    def action(request: Any, forward: Forward) -> HttpResponse:
        p = request["params"][0]
        lo, hi = int(p["fromBlock"], 16), int(p["toBlock"], 16)
        return rpc_error(code, _fill(message, lo, hi), _fill(data, lo, hi), http)(request,
                                                                                   forward)

    return Fault(action, method="eth_getLogs", batch=False, times=float("inf"), when=wide)


@needs_anvil
@pytest.mark.parametrize("provider", sorted(RANGE_ERRORS))
def test_range_too_large_is_split(make_client: Any, chain: Chain, provider: str) -> None:
    code, message, data, http, hinted = RANGE_ERRORS[provider]
    client, transport, sleeps = make_client(refuse_wide_logs(code, message, data, http))
    logs = client.get_logs(0, chain.head, [chain.address], [[TOPIC_A, TOPIC_B]])
    assert logs == chain.logs
    widths = transport.log_widths()
    assert widths[0] == chain.head + 1 and client.stats.splits >= 1
    assert sleeps == [] and client.stats.retries == 0  # split, never retried as-is
    if hinted:  # the provider's proposal is taken at once
        assert widths[1] == LIMIT
    else:
        assert widths[1] == (chain.head + 1) // 2


@needs_anvil
def test_http_413_without_body_splits_get_logs(make_client: Any, chain: Chain) -> None:
    def too_wide(request: Any) -> bool:
        p = request["params"][0]
        return int(p["toBlock"], 16) - int(p["fromBlock"], 16) + 1 > LIMIT

    client, _, _ = make_client(Fault(status(413), method="eth_getLogs", times=float("inf"),
                                     when=too_wide))
    assert client.get_logs(0, chain.head, [chain.address], []) == chain.logs
    assert client.stats.splits >= 1


@needs_anvil
@pytest.mark.parametrize("body", [
    b"eth_getLogs and eth_newFilter are limited to a {n} blocks range",
    b"eth_getLogs is limited to a {n} range\n",
    b'"eth_getLogs is limited to a {n} range"',  # a bare JSON string
])
def test_http_413_with_a_plain_text_limit_takes_its_width(make_client: Any, chain: Chain,
                                                          body: bytes) -> None:
    def too_wide(request: Any) -> bool:
        p = request["params"][0]
        return int(p["toBlock"], 16) - int(p["fromBlock"], 16) + 1 > LIMIT

    text = body.replace(b"{n}", str(LIMIT).encode())
    client, transport, sleeps = make_client(Fault(status(413, {"content-type": "text/plain"}, text),
                                                  method="eth_getLogs", times=float("inf"),
                                                  when=too_wide))
    assert client.get_logs(0, chain.head, [chain.address], []) == chain.logs
    widths = transport.log_widths()
    assert widths[0] == chain.head + 1 and widths[1] == LIMIT  # the stated width, not half
    assert sleeps == [] and client.stats.retries == 0


@needs_anvil
def test_http_413_plain_text_refusal_names_its_text(make_client: Any, chain: Chain) -> None:
    client, _, _ = make_client(Fault(status(413, {}, b"eth_getLogs is limited to a 1 range"),
                                     method="eth_getLogs", times=float("inf")))
    with pytest.raises(RangeTooLarge) as info:
        client.get_logs(0, 0, [chain.address], [])
    assert "HTTP 413" in str(info.value) and "limited to a 1 range" in str(info.value)


@needs_anvil
def test_span_shrinks_then_grows_back(make_client: Any, chain: Chain) -> None:
    assert chain.head + 1 >= 24
    client, transport, _ = make_client(
        refuse_wide_logs(-32005, "query returned more than 10000 results", limit=4),
        logs_max_span=16)
    assert client.get_logs(0, chain.head, [chain.address], []) == chain.logs
    widths = transport.log_widths()
    # 16 and 8 refused; 4 succeeds four times; regrown to 8, refused; back to 4.
    assert widths[:8] == [16, 8, 4, 4, 4, 4, 8, 4]
    assert client.stats.splits == widths.count(16) + widths.count(8)


@needs_anvil
def test_single_block_still_refused_raises(make_client: Any, chain: Chain) -> None:
    client, transport, _ = make_client(
        refuse_wide_logs(-32005, "query returned more than 10000 results", limit=0))
    first = int(chain.logs[0]["blockNumber"], 16)
    with pytest.raises(RangeTooLarge) as info:
        client.get_logs(first, chain.head, [chain.address], [])
    assert "cannot be split" in str(info.value) and f"block {first}" in str(info.value)
    assert transport.label in str(info.value) and transport.log_widths()[-1] == 1


# Deadline wordings: over a wide span the query is split; on a single block (nothing left to
# split) they mean a slow or loaded node, so the same block is retried.
TIMEOUT_ERRORS: dict[str, tuple[int, str, int]] = {
    "alchemy": (-32000, "Query timeout exceeded. Consider reducing your block range.", 400),
    "geth-deadline": (-32000, "context deadline exceeded", 200),
    "execution-timeout": (-32000, "execution timeout", 200),
    "deadline-http-413": (-32000, "context deadline exceeded", 413),  # the body wins over 413
}


def _single_block(request: Any) -> bool:
    p = request["params"][0]
    return bool(p["fromBlock"] == p["toBlock"])


@needs_anvil
@pytest.mark.parametrize("provider", sorted(TIMEOUT_ERRORS))
def test_timeout_on_a_single_block_is_retried_not_split(make_client: Any, chain: Chain,
                                                        provider: str) -> None:
    code, message, http = TIMEOUT_ERRORS[provider]
    first = int(chain.logs[0]["blockNumber"], 16)
    client, transport, sleeps = make_client(
        refuse_wide_logs(code, message, None, http, limit=1),
        Fault(rpc_error(code, message, http=http), method="eth_getLogs", batch=False, times=2,
              when=_single_block))
    logs = client.get_logs(first, first + 2, [chain.address], [])
    assert logs == [x for x in chain.logs if first <= int(x["blockNumber"], 16) <= first + 2]
    assert transport.log_widths()[:4] == [3, 1, 1, 1]  # split to one block, then retried
    assert client.stats.retries == 2 and len(sleeps) == 2 and client.stats.splits == 1


@needs_anvil
@pytest.mark.parametrize("provider", sorted(TIMEOUT_ERRORS))
def test_timeout_on_a_single_block_forever_gives_up_after_the_retries(
        make_client: Any, chain: Chain, provider: str) -> None:
    code, message, http = TIMEOUT_ERRORS[provider]
    first = int(chain.logs[0]["blockNumber"], 16)
    client, transport, sleeps = make_client(
        Fault(rpc_error(code, message, http=http), method="eth_getLogs", times=float("inf")),
        max_retries=3)
    with pytest.raises(RpcResponseError if http != 413 else RpcHttpError) as info:
        client.get_logs(first, first, [chain.address], [])
    assert not isinstance(info.value, RangeTooLarge)
    assert "cannot be split" not in str(info.value)
    assert "gave up after 4 attempts" in "".join(getattr(info.value, "__notes__", []))
    assert transport.log_widths() == [1, 1, 1, 1] and len(sleeps) == 3


@needs_anvil
def test_range_error_on_other_methods_is_not_split(make_client: Any) -> None:
    client, _, sleeps = make_client(Fault(rpc_error(-32602, "block range is too wide")))
    with pytest.raises(RpcResponseError) as info:
        client.call("eth_blockNumber", [])
    assert not isinstance(info.value, RangeTooLarge) and sleeps == []


@needs_anvil
def test_calls_after_close_raise_a_typed_error_without_sending(make_client: Any,
                                                               chain: Chain) -> None:
    client, transport, sleeps = make_client()
    assert client.call("eth_blockNumber", []) == hex(chain.head)
    client.close()
    sent = len(transport.requests)
    for use in (lambda: client.call("eth_blockNumber", []),
                lambda: client.batch(block_calls(chain)[:2]),
                lambda: client.get_logs(0, chain.head, [chain.address], []),
                lambda: client.get_logs_raw(0, chain.head, [chain.address], [])):
        with pytest.raises(ConfigError, match="is closed"):
            use()
    assert len(transport.requests) == sent and sleeps == []
    client.close()  # still idempotent
    with HttpTransport(chain.url) as real:
        pass
    with pytest.raises(ConfigError, match="is closed"):
        real.send(b"{}", timeout=1.0)


# --------------------------------------------------------------------------- rate limit


@needs_anvil
def test_token_bucket_spaces_requests(make_client: Any, chain: Chain) -> None:
    client, _, sleeps = make_client(rps=10.0)
    for b in range(5):
        assert client.call("eth_getBlockByNumber", [hex(b), False]) == chain.blocks[b]
    # The fake sleep does not pass time, so each request books the next 0.1 s slot.
    assert len(sleeps) == 4
    assert all(abs(s - 0.1 * (i + 1)) < 0.05 for i, s in enumerate(sleeps))


# --------------------------------------------------------------------------- secrets

SECRETS = ("SECRETKEY123456789abc", "SECRETQ", "pw")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text)


def test_connect_error_never_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://user:pw@127.0.0.1:{_closed_port()}/v2/SECRETKEY123456789abc?apikey=SECRETQ"
    transport = HttpTransport(url)
    assert "SECRET" not in repr(transport) and transport.label.endswith("/***?***")
    with pytest.raises(TransportConnectError) as info:
        transport.send(b"{}", timeout=2.0)
    error = info.value
    assert error.__cause__ is None and error.__suppress_context__ and error.__context__ is None
    _assert_no_secret(str(error), repr(error), "".join(traceback.format_exception(error)))

    client = JsonRpcClient(transport, max_retries=1, backoff_base=0.001, sleep=lambda s: None)
    with pytest.raises(TransportConnectError) as info:
        client.call("eth_blockNumber", [])
    client.close()
    text = "".join(traceback.format_exception(info.value))
    assert transport.label in str(info.value)
    _assert_no_secret(str(info.value), repr(info.value), text, caplog.text,
                      *(r.getMessage() for r in caplog.records))
    assert any(r.name == "deficit.rpc" for r in caplog.records)  # the retry was logged


def test_timeout_never_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as server:  # accepts connections (backlog) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        port = server.getsockname()[1]
        url = f"http://user:pw@127.0.0.1:{port}/v2/SECRETKEY123456789abc/?key=SECRETQ"
        with HttpTransport(url) as transport, pytest.raises(TransportTimeout) as info:
            transport.send(b"{}", timeout=0.2)
    _assert_no_secret(str(info.value), repr(info.value),
                      "".join(traceback.format_exception(info.value)), caplog.text)


def test_httpx_loggers_are_held_at_warning() -> None:
    assert logging.getLogger("httpx").level >= logging.WARNING
    assert logging.getLogger("httpcore").level >= logging.WARNING


def test_non_http_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        HttpTransport("ws://h/v2/SECRETKEY123456789abc")
    _assert_no_secret(str(info.value))


@pytest.mark.parametrize("url", [
    "https://example.invalid/v2/SECRETKEY1\x01\x0223456789abc",  # httpx refuses it at send
    "https://user:pw/SECRETQ@example.invalid/v2/SECRETKEY123456789abc",  # port 'pw'
])
def test_urls_httpx_cannot_send_are_config_errors(url: str) -> None:
    # refused when the transport is made, not later by an untyped httpx.InvalidURL per request
    with pytest.raises(ConfigError) as info:
        HttpTransport(url)
    _assert_no_secret(str(info.value), "".join(traceback.format_exception(info.value)))


def test_header_credentials_are_masked_without_their_scheme_word() -> None:
    # 'Authorization: Bearer <token>': a provider that rejects the token quotes the token, not
    # the header line; the client masks what HttpTransport.secrets names
    headers = {"authorization": "Bearer SECRETKEY123456789abc", "x-api-key": "SECRETQ"}
    with HttpTransport("http://127.0.0.1:1/", headers=headers) as transport:
        text = redact_text("invalid token SECRETKEY123456789abc (Bearer SECRETKEY123456789abc); "
                           "api key SECRETQ; the bearer scheme stays", transport.secrets)
    _assert_no_secret(text)
    assert "bearer scheme stays" in text


@pytest.mark.parametrize("value", ["Bearer SECRETKEY123456789abc\r\nX-Other: 1",
                                   "Bearer SECRETKEY12345\x006789abc"])
def test_header_values_httpx_cannot_send_are_config_errors(value: str) -> None:
    # h11 quotes the whole illegal value (as a bytes repr) in its error: refuse it up front
    with pytest.raises(ConfigError) as info:
        HttpTransport("http://127.0.0.1:1/", headers={"authorization": value})
    _assert_no_secret(str(info.value), "".join(traceback.format_exception(info.value)))
    assert "authorization" in str(info.value)


@pytest.mark.parametrize(("url", "label"), [
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("https://eth-mainnet.g.alchemy.com/v2/Ab-cdEFghIJklMNopQRstUVwxYZ12345",
     "https://eth-mainnet.g.alchemy.com/***"),
    ("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef",
     "https://mainnet.infura.io/***"),
    ("https://icy-mountain.quiknode.pro/14fb466c039ca54a895f597ee2744e848949099d/",
     "https://icy-mountain.quiknode.pro/***"),
    ("https://rpc.ankr.com/eth/" + "ab" * 32, "https://rpc.ankr.com/***"),
    ("https://api.example.org/rpc?apikey=SECRETQ", "https://api.example.org/***?***"),
    ("https://u:pw@[::1]:8545/?key=K#frag", "https://[::1]:8545?***"),
    ("localhost:8545", "***"),
    # userinfo with an unencoded '/', '?' or '#' (a base64 password): urlsplit ends the netloc
    # there, so "user:ab" would read as host and port; nothing of it may be shown
    ("https://user:ab/cd+ef==@node.example.com/", "***"),
    ("https://user:12/34@node.example.com/", "***"),
    ("https://user:pa#ss@node.example.com/v2/KEY", "***"),
    ("https://user:pa?ss@node.example.com/", "***"),
])
def test_redact_url_examples(url: str, label: str) -> None:
    assert redact_url(url) == label


def test_redact_text_masks_urls_and_their_parts() -> None:
    url = "http://user:pw@127.0.0.1:1/v2/SECRETKEY123456789abc?apikey=SECRETQ"
    text = (f"POST {url} failed; retried http://127.0.0.1:1/v2/SECRETKEY123456789abc; "
            "key=SECRETQ; auth user:pw; short /v2/ stays")
    out = redact_text(text, [url])
    _assert_no_secret(out)
    assert "/v2/ stays" in out
    assert redact_text("node http://127.0.0.1:8545 down", ["http://127.0.0.1:8545"]) == \
        "node http://127.0.0.1:8545 down"
    assert redact_text("bearer abc123 used", ["abc123"]) == "bearer *** used"


_SECRET = st.text(string.ascii_uppercase + string.digits + "_-~", min_size=1, max_size=40) \
    .filter(lambda s: any(c.isupper() for c in s))
_WORD = st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=15)


@st.composite
def _urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A URL and its secrets (query values, long path segments, userinfo), in upper case.

    Hosts, schemes and short segments are lower case, so a secret found in the label can only
    have leaked from where it was hidden.
    """
    secrets: list[str] = []
    host = draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,6}){0,2}", fullmatch=True))
    port = draw(st.none() | st.integers(1, 65535))
    segments = draw(st.lists(_WORD | _SECRET.filter(lambda s: len(s) >= 16), max_size=4))
    secrets += [s for s in segments if len(s) >= 16]
    query = draw(st.lists(st.tuples(st.sampled_from(["apikey", "key", "token", "x"]), _SECRET),
                          max_size=3))
    secrets += [v for _, v in query]
    userinfo = draw(st.none() | st.tuples(_WORD, _SECRET))
    netloc = host + (f":{port}" if port else "")
    if userinfo:
        netloc = f"{userinfo[0]}:{userinfo[1]}@{netloc}"
        secrets.append(userinfo[1])
    path = "/" + "/".join(segments) if segments else draw(st.sampled_from(["", "/"]))
    url = f"{draw(st.sampled_from(['http', 'https']))}://{netloc}{path}"
    if query:
        url += "?" + urlencode(query)
    return url, secrets


@given(_urls())
@settings(max_examples=300, deadline=None)
def test_redact_url_never_leaks(case: tuple[str, list[str]]) -> None:
    url, secrets = case
    label = redact_url(url)
    for secret in secrets:
        assert secret not in label
    parts = urlsplit(label)
    assert parts.path in ("", "/***") and parts.query in ("", "***") and not parts.fragment
    assert "@" not in parts.netloc
    assert redact_url(label) == label
    assert all(s not in redact_text(f"error at {url}!", [url]) for s in secrets)


# --------------------------------------------------------------------------- raw eth_getLogs


def _raw_logs(client: JsonRpcClient, lo: int, hi: int, **kw: Any) -> list[dict[str, Any]]:
    parts = client.get_logs_raw(lo, hi, [kw.get("address", "")] if kw else [], [])
    out: list[dict[str, Any]] = []
    for p in parts:
        logs = orjson.loads(bytes(p.body))
        assert logs and all(p.start <= int(g["blockNumber"], 16) <= p.end for g in logs)
        out.extend(logs)
    return out


@needs_anvil
def test_get_logs_raw_holds_the_same_logs_as_get_logs(make_client: Any, chain: Chain) -> None:
    client, transport, _ = make_client(logs_max_span=4)
    parts = client.get_logs_raw(0, chain.head, [chain.address], [[TOPIC_A, TOPIC_B]])
    assert [orjson.loads(bytes(p.body)) for p in parts]  # the node's own bytes, unparsed
    assert [g for p in parts for g in orjson.loads(bytes(p.body))] == chain.logs
    assert [(p.start, p.end) for p in parts] == sorted({(p.start, p.end) for p in parts})
    assert all(isinstance(p.body, memoryview) for p in parts)  # plain envelope: not parsed
    assert transport.log_widths()[0] == 4


@needs_anvil
@pytest.mark.parametrize("edit", ["reordered", "extra_key", "pretty"])
def test_get_logs_raw_other_envelopes_are_parsed_and_checked(make_client: Any, chain: Chain,
                                                            edit: str) -> None:
    def action(request: Any, forward: Any) -> HttpResponse:
        r = forward()
        doc = orjson.loads(r.body)
        if edit == "reordered":
            body = orjson.dumps({"result": doc["result"], "id": doc["id"], "jsonrpc": "2.0"})
        elif edit == "extra_key":
            body = orjson.dumps({**doc, "x": 1})
        else:
            body = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        return HttpResponse(r.status, r.headers, body)

    client, _, _ = make_client(Fault(action, method="eth_getLogs", times=float("inf")))
    parts = client.get_logs_raw(0, chain.head, [chain.address], [])
    assert [g for p in parts for g in orjson.loads(bytes(p.body))] == chain.logs


@needs_anvil
def test_get_logs_raw_retries_a_truncated_body(make_client: Any, chain: Chain) -> None:
    client, _, sleeps = make_client(Fault(truncated, method="eth_getLogs", times=2))
    parts = client.get_logs_raw(0, chain.head, [chain.address], [])
    assert [g for p in parts for g in orjson.loads(bytes(p.body))] == chain.logs
    assert client.stats.retries == 2 and len(sleeps) == 2


@needs_anvil
def test_get_logs_raw_range_errors_split_and_errors_raise(make_client: Any, chain: Chain) -> None:
    client, _, _ = make_client(
        refuse_wide_logs(-32005, "query returned more than 10000 results", limit=4))
    parts = client.get_logs_raw(0, chain.head, [chain.address], [])
    assert [g for p in parts for g in orjson.loads(bytes(p.body))] == chain.logs
    assert client.stats.splits >= 1 and max(p.end - p.start + 1 for p in parts) <= 4
    client, _, _ = make_client(Fault(rpc_error(-32602, "invalid argument 0: hex string"),
                                     method="eth_getLogs"))
    with pytest.raises(RpcResponseError):
        client.get_logs_raw(0, chain.head, [chain.address], [])


@needs_anvil
def test_get_logs_raw_parsed_answer_outside_the_span_raises(make_client: Any,
                                                             chain: Chain) -> None:
    from ingest.errors import RpcError

    def shift(request: Any, doc: Any) -> Any:  # and reorder keys: forces the parsed path
        for g in doc["result"]:
            g["blockNumber"] = hex(int(g["blockNumber"], 16) + 100)
        return {"id": doc["id"], "jsonrpc": "2.0", "result": doc["result"]}

    client, _, _ = make_client(Fault(tampered(shift), method="eth_getLogs"))
    with pytest.raises(RpcError, match="outside the range"):
        client.get_logs_raw(0, chain.head, [chain.address], [])


@needs_anvil
@pytest.mark.parametrize("spoil", [lambda h: h + " ", lambda h: h + "\n",
                                   lambda h: h[:2] + "_".join(h[2:]) + "_0"])
def test_malformed_quantities_are_not_read_as_numbers(make_client: Any, chain: Chain,
                                                      spoil: Callable[[str], str]) -> None:
    # Python's int(text, 16) takes '0x7a69 ' and '0x7_a_6_9_0': no node sends them, and a chain
    # id or log position read from one would be a guess
    from ingest.errors import RpcError

    def chain_id(request: Any, doc: Any) -> Any:
        return {**doc, "result": spoil(doc["result"])}

    def block(request: Any, doc: Any) -> Any:
        doc["result"][0]["blockNumber"] = spoil(doc["result"][0]["blockNumber"])
        return doc

    client, _, _ = make_client(Fault(tampered(chain_id), method="eth_chainId"),
                               Fault(tampered(block), method="eth_getLogs"))
    with pytest.raises(RpcError, match="not a hex quantity"):
        client.chain_id()
    with pytest.raises(RpcError, match="without blockNumber/logIndex"):
        client.get_logs(0, chain.head, [chain.address], [])


@pytest.mark.parametrize(("body", "ok"), [
    (b'{"jsonrpc":"2.0","id":7,"result":[]}', b"[]"),
    (b' {"jsonrpc": "2.0", "id": 7, "result": [{"a":1}] }\n', b'[{"a":1}]'),
    (b'{"jsonrpc":"2.0","id":8,"result":[]}', None),  # another call's answer
    (b'{"jsonrpc":"2.0","id":7,"result":[{"a":1}', None),  # truncated
    (b'{"jsonrpc":"2.0","id":7,"result":[{"a":["1"]}', None),  # truncated right after a ]
    # cut right after a nested object's "]}": passes the envelope check, and DuckDB's JSON
    # reader rejects it later (the engine then refetches through the parsed path)
    (b'{"jsonrpc":"2.0","id":7,"result":[{"a":[{}]}', b'[{"a":[{}]'),
    (b'{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"x"}}', None),
    (b'{"id":7,"jsonrpc":"2.0","result":[]}', None),  # other key order: parsed instead
    (b'{"jsonrpc":"2.0","id":7,"result":[],"x":[]}', None),
    (b'{"jsonrpc":"2.0","id":"7","result":[]}', None),
])
def test_raw_envelope_is_recognized_only_when_plain(body: bytes, ok: bytes | None) -> None:
    from ingest.rpc import _raw_result

    got = _raw_result(body, 7)
    assert (None if got is None else bytes(got)) == ok
