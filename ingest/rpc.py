"""JSON-RPC over a :class:`~ingest.transports.Transport`: batching, retries, rate limit, log ranges.

:class:`JsonRpcClient` is the only code in ``ingest`` that speaks JSON-RPC. It never opens a
socket: every HTTP request goes through ``transport.send``, so tests replace the network by
swapping the transport. It never returns partial data: a call either yields the node's exact
``result`` or raises a typed :mod:`ingest.errors` exception naming the endpoint by its redacted
label (never the URL) and the method.

What happens to a failed HTTP request
=====================================

``TransportTimeout``, ``TransportConnectError`` (any ``RpcTransportError`` from the transport)
    Retried; after ``max_retries`` the last one is re-raised.
Body that is not complete JSON (truncated, an HTML error page)
    Retried; finally :class:`RpcTransportError`.
A batch answered by a single object, an id missing, unknown or repeated
    Treated as a transport fault: the unanswered calls are resent; finally
    :class:`RpcTransportError` (or :class:`RpcResponseError` for a batch-wide error object,
    bare or alone in an array with id null).
HTTP 429
    Retried after ``Retry-After`` (delta-seconds or HTTP-date, capped at ``backoff_max``), else
    after the body's Infura ``data.rate.backoff_seconds``, else the usual backoff (also for an
    invalid ``Retry-After``: negative, unparseable); finally :class:`RpcHttpError`.
HTTP 5xx (except 501 and 505)
    Retried (waits as for 429); finally :class:`RpcHttpError`.
HTTP 413
    For a batch: the batch size is halved. For a lone ``eth_getLogs``: :class:`RangeTooLarge`,
    with the width a plain-text body states (QuickNode: "... limited to a 10,000 blocks range")
    read as from a JSON-RPC error.
    Otherwise :class:`RpcHttpError` at once. A JSON-RPC body that names the limit wins over the
    status (QuickNode answers its range limit with 413 and a JSON-RPC error).
Any other HTTP status
    A JSON-RPC body is handled like a 200 answer (Alchemy sends some errors with 400);
    anything else is :class:`RpcHttpError` at once.
JSON-RPC error matching :data:`BATCH_TOO_LARGE_SHAPES`
    The batch size is halved for the rest of the client's life and the calls are resent.
JSON-RPC error matching :data:`LOGS_LIMIT_SHAPES` (``eth_getLogs`` only)
    :class:`RangeTooLarge` at once, with the provider's proposed range when it gave one; except a
    query deadline (:data:`LOGS_TIMEOUT_SHAPES`) on a single block, which nothing can split: it
    means a slow or loaded node and is retried like :data:`RETRYABLE_ERROR_SHAPES`.
JSON-RPC error matching :data:`RETRYABLE_ERROR_SHAPES`
    Retried (Infura's ``data.rate.backoff_seconds`` honoured); finally :class:`RpcResponseError`.
Any other JSON-RPC error
    :class:`RpcResponseError` at once, no retry.

A state-changing call (``eth_send*``, filters, ``evm_mine``, ...: :data:`_STATE_CHANGING`) is
not resent after a failure that leaves unknown whether the node acted on it (a transport error,
an incomplete answer, a 5xx): that error is raised at once. Refusals (429, JSON-RPC errors) are
retried as above.

Backoff is "full jitter": before retry ``n`` (1-based) the client sleeps a uniform random time in
``[0, min(backoff_max, backoff_base * 2**(n-1))]`` seconds, drawn from ``random.Random(seed)``; a
server-given wait replaces the draw. ``max_retries`` counts retries after the first attempt.

Range splitting for ``eth_getLogs`` lives in :meth:`JsonRpcClient.get_logs`: it walks the range in
spans of :attr:`JsonRpcClient.logs_span` blocks, shrinks the span on :class:`RangeTooLarge` and
grows it back after a run of successes. :meth:`JsonRpcClient.get_logs_raw` walks the same spans
with the same error handling but hands each span's ``result`` array back as JSON bytes (the bulk
ingest path, read by DuckDB): a 2xx body in the plain success envelope is not parsed in Python at
all; every other answer goes through the table above.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from types import TracebackType
from typing import Any

import orjson

from .errors import (
    ChainIdMismatch,
    ConfigError,
    RangeTooLarge,
    RpcError,
    RpcHttpError,
    RpcResponseError,
    RpcTransportError,
)
from .redact import redact_text
from .transports import HttpResponse, Transport

__all__ = [
    "BATCH_TOO_LARGE_SHAPES",
    "ErrorShape",
    "JsonRpcClient",
    "LOGS_LIMIT_SHAPES",
    "LOGS_TIMEOUT_SHAPES",
    "LogsPart",
    "RETRYABLE_ERROR_SHAPES",
    "RETRYABLE_HTTP_STATUSES",
    "RpcStats",
]

logger = logging.getLogger("deficit.rpc")

RETRYABLE_HTTP_STATUSES = frozenset({429, *range(500, 600)} - {501, 505})
"""HTTP statuses that mean "not now" rather than "never": 429 and every 5xx (Cloudflare, in
front of many endpoints, adds 520-524 and others), except 501 Not Implemented and 505 HTTP
Version Not Supported."""


@dataclass(frozen=True)
class ErrorShape:
    """One recognised wording of a JSON-RPC error object.

    ``pattern`` is searched (case-insensitively) in the error's ``message`` and, separately, in
    its ``data`` (some providers, such as Thirdweb, say ``"invalid params"`` and put the reason in
    ``data``). ``codes`` restricts the match to those error codes; empty means any code. A shape
    without a pattern matches on the code alone.
    """

    provider: str
    pattern: re.Pattern[str] | None
    codes: frozenset[int] = frozenset()

    def matches(self, code: int | None, texts: Sequence[str]) -> bool:
        """Whether an error with ``code`` and lower-cased ``texts`` has this shape."""
        if self.codes and code not in self.codes:
            return False
        if self.pattern is None:
            return True
        return any(self.pattern.search(t) for t in texts)


def _shape(provider: str, pattern: str | None, *codes: int) -> ErrorShape:
    return ErrorShape(provider, re.compile(pattern) if pattern is not None else None,
                      frozenset(codes))


RETRYABLE_ERROR_SHAPES: tuple[ErrorShape, ...] = (
    # "Your app has exceeded its compute units per second capacity..."
    _shape("Alchemy (compute units per second)", None, 429),
    # "project ID request rate exceeded", "exceeded project rate limit",
    # "daily request count exceeded, request rate limited", Alchemy "Too many requests".
    _shape("Infura / Alchemy / Nethermind (-32005 limit exceeded)",
           r"rate|limit exceeded|too many requests|capacity", -32005),
    # "15/second request limit reached - reduce calls per second or upgrade your account"
    _shape("QuickNode (-32007)", r"request limit reached|per second", -32007),
    # A load-balanced backend behind the provider has not imported the block yet.
    _shape("geth / Erigon behind load balancers", r"header not found"),
    # geth's own HTTP handler gave up ("request timed out", code -32002).
    _shape("geth (server-side timeout)", r"request timed out", -32002),
    _shape("Cloudflare Ethereum gateway (-32046)", r"cannot fulfill request", -32046),
    _shape("any provider (rate limit / temporary unavailability wording)",
           r"temporarily unavailable|service unavailable|try again later|please retry"
           r"|server (?:is )?(?:busy|overloaded)|rate.?limit|too many requests|request rate"
           r"|no backend is currently healthy|upstream (?:connect|request) (?:error|timeout)"),
)
"""JSON-RPC errors that mean rate limiting or a temporary outage: the call is retried."""

BATCH_TOO_LARGE_SHAPES: tuple[ErrorShape, ...] = (
    # geth --rpc.batch-request-limit (default 1000): code -32600, reported on the first call.
    _shape("geth (batch item limit)", r"batch too large"),
    # geth --rpc.batch-response-max-size: later items of the batch get code -32003.
    _shape("geth (batch response size)", r"^response too large$", -32003),
    # jsonrpsee servers (reth, Hyperliquid, Substrate): -32010 / -32011, id null, "data":
    # "Exceeded max limit of 20".
    _shape("jsonrpsee (reth, Hyperliquid)", r"batch (?:request|response) was too large"),
    _shape("Erigon (--rpc.batch.limit)", r"batch limit \d+ exceeded"),
    # "Number of requests in batch exceeds --rpc-max-batch-size."
    _shape("Besu", r"max.?batch.?size"),
    _shape("Nethermind", r"batch size limit exceeded|maxbatchresponsebodysize"),
    _shape("hosted providers (generic wording)",
           r"batch size (?:is )?too (?:large|big)|too many (?:requests|calls|items) in (?:the |a )?"
           r"batch|batch (?:request )?size exceeds|batch is too (?:large|big)"),
)
"""JSON-RPC errors that refuse a batch for its size: the batch size is halved for good."""

LOGS_TIMEOUT_SHAPES: tuple[ErrorShape, ...] = (
    # "Query timeout exceeded. Consider reducing your block range. ..." (-32000, HTTP 400)
    _shape("Alchemy / Infura (query duration)",
           r"query timeout|consider reducing your block range"),
    # geth / Erigon / Bor and the providers in front of them: the query's context ran out
    _shape("geth / Erigon (query deadline)", r"context deadline exceeded"),
    _shape("any provider (query or execution timeout wording)",
           r"execution timeout|(?:query|execution) timed out|statement timeout"),
)
"""``eth_getLogs`` errors that say the query ran out of time (part of :data:`LOGS_LIMIT_SHAPES`).

Over several blocks they are :class:`RangeTooLarge` (the span is split); over a single block,
which cannot be split, they are a transient fault and retried with the usual backoff and limit.
"""

LOGS_LIMIT_SHAPES: tuple[ErrorShape, ...] = (
    # "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range
    # and no limit on the response size, or you can request any block range with a cap of 10K
    # logs in the response. Based on your parameters and the response size limit, this block
    # range should work: [0xc5dc00, 0xc614a7]"  (-32602; the free tier says -32600 "Under the
    # Free tier plan, you can make eth_getLogs requests with up to a 10 block range. ...")
    _shape("Alchemy", r"log response size exceeded"),
    _shape("Alchemy", r"eth_getlogs requests with up to an? [\d,.]+\s*k? block range"),
    # Query deadlines (see LOGS_TIMEOUT_SHAPES): a narrower range may finish in time.
    *LOGS_TIMEOUT_SHAPES,
    # -32005 "query returned more than 10000 results. Try with this block range [0x.., 0x..]."
    _shape("Infura / Thirdweb / zkSync / Polygon zkEVM",
           r"query returned more than [\d,.]+ results"),
    # -32602 "range 1000000 exceeds limit of 10000"
    _shape("Infura (block range)", r"range \d+ exceeds limit of \d+"),
    # -32602 "invalid params", data "range 20000 is bigger than range limit 2000"
    _shape("Thirdweb / Tenderly", r"range \d+ is bigger than range limit"),
    # -32614 (HTTP 413) "eth_getLogs is limited to a 10,000 range"; QuickNode's current wording
    # "eth_getLogs and eth_newFilter are limited to a 10,000 blocks range";
    # 1RPC "eth_getLogs is limited to a 1000 blocks range"
    _shape("QuickNode / Blast / 1RPC",
           r"eth_getlogs (?:and eth_newfilter )?(?:is|are) limited to"),
    _shape("BlockPI", r"limited to [\d,.]+ blocks?"),
    # -32600 "block range is too wide"; Frontier: "block range is too wide (maximum 1024)"
    _shape("Ankr / Moonbeam (Frontier)", r"block range is too wide"),
    # -32000 / -32701 "exceed maximum block range: 5000"
    _shape("BSC / publicnode / geth forks", r"exceed(?:s|ed)? maximum block range"),
    # -32602 "query exceeds max block range 100000"
    _shape("reth / Hyperliquid / Berachain", r"query exceeds max block range"),
    # -32602 "query exceeds max results 20000, retry with the range 25766988-25775072"
    _shape("reth / Erigon / llamarpc / Blast / dRPC", r"query exceeds max results"),
    # "logs matched by query exceeds limit of 10000"
    _shape("Arbitrum Nitro", r"logs matched by query exceeds limit"),
    # "Block range limit exceeded."
    _shape("Chainstack", r"block range limit exceeded"),
    # -32047 "Invalid eth_getLogs request. 'fromBlock'-'toBlock' range too large. Max range: 800";
    # Base "block range too large"; Candle "block range too high"; Optimism "Block range is too
    # large"; -32012 "requested range too large".
    _shape("Cloudflare / Base / Optimism / Candle / generic",
           r"range (?:is )?too (?:large|high|big)"),
    # "block range is bigger than maxBlockRange";
    # "block range is larger than max block range, block range = 5120, max block range = 5000"
    _shape("Scroll / Morph (geth forks)", r"block range is (?:bigger|larger) than max"),
    _shape("Avalanche", r"requested too many blocks from \d+ to \d+"),
    _shape("Thirdweb", r"maximum allowed number of requested blocks is"),
    _shape("Blast (paid plans)", r"exceeds the range allowed for your plan"),
    _shape("Coinbase (Base node)", r"limit the query to at most [\d,.]+ blocks"),
    # code 35 "ranges over 10000 blocks are not supported on freetier"
    _shape("dRPC", r"ranges over [\d,.]+ blocks are not supported"),
    _shape("Swell", r"block range greater than [\d,.]+ max"),
    _shape("Somnia", r"block range exceeds [\d,.]+"),
    _shape("Harmony", r"query must be smaller than size"),
    _shape("Ankr (TAC)", r"maximum \[from, to\] blocks distance"),
    _shape("Merkle", r"eth_getlogs range is too large"),
    # "response size should not greater than 10000000 bytes"
    _shape("1RPC (response size)", r"response size should not greater than"),
    # -32020 "backend response too large"
    _shape("Optimism / Base proxyd (response size)", r"backend response too large"),
    _shape("any provider (response size / result count wording)",
           r"response size exceeded|response is too big|response exceeds? size limit"
           r"|response too large|result set too large|too many (?:results|logs)"),
)
"""``eth_getLogs`` errors that refuse the block range, result count or response size.

They become :class:`RangeTooLarge`; the remedy is a smaller range, never a retry of the same one.
"""

_NUMBER = r"(?P<n>\d[\d,.]*)\s*(?P<k>k(?![a-z]))?"

_EXPLICIT_RANGES: tuple[tuple[str, re.Pattern[str], int], ...] = (
    # Alchemy "this block range should work: [0x1, 0x7d0]";
    # Infura / Thirdweb / zkSync "Try with this block range [0x800000, 0x800054]."
    ("Alchemy / Infura / Thirdweb / zkSync",
     re.compile(r"\[\s*0x(?P<a>[0-9a-f]+)\s*,\s*0x(?P<b>[0-9a-f]+)\s*\]"), 16),
    # reth / dRPC / Blast "retry with the range 25766988-25775072"
    ("reth / dRPC / Blast", re.compile(r"retry with the range (?P<a>\d+)\s*-\s*(?P<b>\d+)"), 10),
)
"""Error wordings that propose an exact (from, to) block range to retry with."""

_WIDTH_HINTS: tuple[re.Pattern[str], ...] = tuple(re.compile(p) for p in (
    rf"limited to an? {_NUMBER}",                      # QuickNode, 1RPC
    rf"limited to {_NUMBER} blocks?",                  # BlockPI
    rf"up to an? {_NUMBER} block range",               # Alchemy, Aurora
    rf"max(?:imum)? block range\s*[:=]?\s*{_NUMBER}",  # BSC, publicnode, reth, Morph
    rf"range \d+ exceeds limit of {_NUMBER}",          # Infura
    rf"range limit {_NUMBER}",                         # Thirdweb, Tenderly
    rf"max range:\s*{_NUMBER}",                        # Cloudflare
    rf"maximum is set to {_NUMBER}",                   # Avalanche
    rf"requested blocks is {_NUMBER}",                 # Thirdweb
    rf"allowed for your plan \(\d+ > {_NUMBER}\)",     # Blast
    rf"at most {_NUMBER} blocks",                      # Coinbase
    rf"ranges over {_NUMBER} blocks",                  # dRPC
    rf"too wide \(maximum {_NUMBER}\)",                # Moonbeam
    rf"block range greater than {_NUMBER}",            # Swell
    rf"block range exceeds {_NUMBER}",                 # Somnia
    rf"smaller than size {_NUMBER}",                   # Harmony
    rf"blocks distance:\s*{_NUMBER}",                  # Ankr (TAC)
    rf"max is {_NUMBER} blocks",                       # Merkle
))
"""Error wordings that state the largest accepted block range, in blocks."""

# A JSON integer of 19+ digits may exceed 64 bits, which orjson turns into a lossy float; such
# bodies are decoded by the stdlib instead (exact, slower). Digits inside strings (hex data)
# follow ``0x`` or other hex digits, never ``:``, ``[`` or ``,``, so they do not trigger it.
_BIG_INT = re.compile(rb"[:\[,]\s*-?\d{19}")

_INVALID = object()
"""Marks a body that did not decode as JSON."""

_STATE_CHANGING = frozenset({
    "eth_sendTransaction", "eth_sendRawTransaction", "personal_sendTransaction",
    "eth_newFilter", "eth_newBlockFilter", "eth_newPendingTransactionFilter",
    "eth_getFilterChanges", "eth_uninstallFilter",
    "evm_mine", "evm_snapshot", "evm_revert", "evm_increaseTime", "anvil_mine", "hardhat_mine",
})
"""Methods a node acts on (sends, mines, creates or consumes something): not idempotent, so not
resent after a failure that leaves unknown whether the node got them (see :meth:`_execute`)."""


def _changes_state(method: str) -> bool:
    return method in _STATE_CHANGING or method.startswith("eth_send")


def _outcome_unknown(error: RpcError) -> bool:
    """Whether the request may have been acted on although it failed: no (complete) answer, or
    a 5xx from a proxy whose backend may have run it. A 429 or a JSON-RPC error is a refusal."""
    if isinstance(error, RpcHttpError):
        return error.status >= 500
    return isinstance(error, RpcTransportError)


_GROW_AFTER = 4
"""Consecutive successful ``eth_getLogs`` spans after which the span is doubled again."""


@dataclass
class RpcStats:
    """Counters since the client was created (read them; the client updates them).

    ``requests``: HTTP requests sent, retries included. ``calls``: JSON-RPC calls sent (a
    resent call counts again). ``retries``: retry rounds (each one slept a backoff).
    ``splits``: ``eth_getLogs`` span reductions after :class:`RangeTooLarge`.
    ``batch_shrinks``: times the provider refused a batch for its size and it was halved.
    ``bytes_received``: response body bytes (after HTTP decompression).
    """

    requests: int = 0
    calls: int = 0
    retries: int = 0
    splits: int = 0
    batch_shrinks: int = 0
    bytes_received: int = 0


@dataclass(frozen=True)
class _Call:
    method: str
    params: list[Any]
    raw: bool = False  # a 2xx answer with the plain success envelope keeps its result as bytes


@dataclass(frozen=True)
class LogsPart:
    """One ``eth_getLogs`` span's ``result`` array, as JSON bytes (see :meth:`JsonRpcClient.get_logs_raw`).

    ``start``/``end``: the inclusive block range that was asked for; every log in ``body`` must
    lie in it (the reader checks). ``body``: the bytes of a JSON array of log objects, exactly
    as the node sent them, or re-serialized from the parsed answer when the envelope was not
    the plain one.
    """

    start: int
    end: int
    body: bytes | memoryview


class _RawArray:
    """A ``result`` array kept as the bytes it came in (never parsed in Python)."""

    __slots__ = ("body",)

    def __init__(self, body: memoryview):
        self.body = body


@dataclass
class _Outcome:
    """What one HTTP request achieved for a group of calls (positions within the group)."""

    values: dict[int, Any] = field(default_factory=dict)
    pending: list[int] = field(default_factory=list)
    error: RpcError | None = None
    wait: float | None = None
    too_large: bool = False
    unsure: dict[int, RpcError] | None = None
    """Pending positions the node may have acted on, with the failure that left them unknown;
    None: all pending ones if ``error`` leaves the outcome unknown (:func:`_outcome_unknown`)."""

    def unsure_positions(self) -> dict[int, RpcError]:
        if self.unsure is not None:
            return self.unsure
        if self.error is not None and _outcome_unknown(self.error):
            return dict.fromkeys(self.pending, self.error)
        return {}


class _Aborted(Exception):
    """A sibling chunk of the same batch failed; this chunk stops early."""


class _TokenBucket:
    """Thread-safe token bucket: at most ``rate`` acquisitions per second, no bursts.

    Each caller reserves the next free slot under the lock and then sleeps once until it, so a
    fake ``sleep`` in tests sees exactly the waits a real run would take.
    """

    def __init__(self, rate: float | None, sleep: Callable[[float], None],
                 clock: Callable[[], float] = time.monotonic):
        self._rate, self._sleep, self._clock = rate, sleep, clock
        self._lock = threading.Lock()
        self._tokens = 1.0
        self._last = clock()

    def acquire(self) -> float:
        """Take one token, sleeping until it is available; returns the seconds slept."""
        if self._rate is None:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(1.0, self._tokens + (now - self._last) * self._rate)
            self._last = now
            self._tokens -= 1.0
            delay = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if delay > 0:
            self._sleep(delay)
        return delay


# Methods whose results are, by the JSON-RPC spec, only hex strings, objects of hex strings and
# booleans: a JSON number in their answer can only be the small id or error code, so the
# big-integer guard (a regex over the whole body, as costly as parsing it) is not needed.
_HEX_ONLY_METHODS = frozenset({"eth_getLogs", "eth_getBlockByNumber", "eth_getBlockByHash",
                               "eth_call", "eth_blockNumber", "eth_chainId"})


def _loads(body: bytes, hex_only: bool = False) -> Any:
    """Decode a JSON body exactly; :data:`_INVALID` if it is not (complete) JSON.

    orjson turns integers above 64 bits into floats; bodies that may carry one are decoded with
    the stdlib instead (``hex_only`` skips that scan for methods whose results are hex strings).
    """
    try:
        if not hex_only and _BIG_INT.search(body):
            return json.loads(body)
        return orjson.loads(body)
    except ValueError:  # orjson.JSONDecodeError, json.JSONDecodeError, UnicodeDecodeError
        return _INVALID


# The plain success envelope of a lone call: ``{"jsonrpc":"2.0","id":<n>,"result":[`` ... ``]}``
# (geth, erigon, reth, anvil and the hosted providers all put the keys in this order). Only
# such a body skips the Python parse; anything else (errors, other key orders, a truncated
# body, which cannot end in ``]}`` unless cut exactly there) takes the ordinary path.
_RAW_HEAD = re.compile(rb'\A\s*\{\s*"jsonrpc"\s*:\s*"2\.0"\s*,\s*"id"\s*:\s*(\d{1,18})\s*,'
                       rb'\s*"result"\s*:\s*\[')
_WS = b" \t\r\n"


def _raw_result(body: bytes, call_id: int) -> memoryview | None:
    """The ``[...]`` result of a plain success envelope answering ``call_id``, else None.

    Only the envelope is checked here; the array itself is parsed (strictly) by DuckDB later,
    and a body that turns out not to be valid JSON there is fetched again the ordinary way.
    """
    m = _RAW_HEAD.match(body)
    if m is None or int(m.group(1)) != call_id:
        return None
    end = len(body.rstrip(_WS))
    if end < 2 or body[end - 1:end] != b"}":
        return None
    close = len(body[:end - 1].rstrip(_WS))
    if close <= m.end() - 1 or body[close - 1:close] != b"]":
        return None
    last = len(body[:close - 1].rstrip(_WS))
    if last != m.end() and body[last - 1:last] != b"}":
        return None  # an array of log objects ends with "}" (or is empty)
    return memoryview(body)[m.end() - 1:close]


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    None (the usual backoff applies) for a value that is neither: unparseable, not finite, or
    negative (delta-seconds has no sign; "-5" is no licence to retry at once). A date in the
    past means now (0).
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, (when - datetime.now(UTC)).total_seconds())
    else:
        if value.startswith("-") or seconds < 0:
            return None
    return seconds if math.isfinite(seconds) else None


def _error_fields(error: Any) -> tuple[int | None, str, Any]:
    """(code, message, data) of a JSON-RPC error object, tolerating sloppy providers."""
    if not isinstance(error, Mapping):
        return None, str(error), None
    code = error.get("code")
    if isinstance(code, str) and code.lstrip("-").isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    return code, str(error.get("message", "")), error.get("data")


def _redact_data(data: Any, secrets: Sequence[str]) -> Any:
    """``data`` of a JSON-RPC error with every string in it passed through :func:`redact_text`."""
    if isinstance(data, str):
        return redact_text(data, secrets)
    if isinstance(data, list):
        return [_redact_data(x, secrets) for x in data]
    if isinstance(data, Mapping):
        return {redact_text(str(k), secrets): _redact_data(v, secrets) for k, v in data.items()}
    return data


def _texts(message: str, data: Any) -> tuple[str, ...]:
    """Lower-cased texts to match shapes against: the message and the data, separately."""
    texts = [message.lower()]
    if isinstance(data, str):
        texts.append(data.lower())
    elif data is not None:
        try:
            texts.append(orjson.dumps(data).decode().lower())
        except TypeError:
            texts.append(str(data).lower())
    return tuple(texts)


def _matches(shapes: Sequence[ErrorShape], code: int | None, texts: Sequence[str]) -> bool:
    return any(s.matches(code, texts) for s in shapes)


def _backoff_hint(data: Any) -> float | None:
    """Infura's ``data.rate.backoff_seconds`` (or ``data.backoff_seconds``), if present."""
    if not isinstance(data, Mapping):
        return None
    for holder in (data, data.get("rate")):
        if isinstance(holder, Mapping):
            value = holder.get("backoff_seconds")
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
    return None


_HEX_QUANTITY = re.compile(r"0[xX][0-9a-fA-F]+")


def _body_backoff_hint(doc: Any) -> float | None:
    """The longest :func:`_backoff_hint` of the JSON-RPC errors in a decoded body, if any."""
    hints = [h for item in (doc if isinstance(doc, list) else [doc])
             if isinstance(item, Mapping) and isinstance(item.get("error"), Mapping)
             and (h := _backoff_hint(item["error"].get("data"))) is not None]
    return max(hints) if hints else None


def _quantity(value: Any) -> int | None:
    """An ``0x``-hex JSON-RPC quantity as int, or None (block tags, malformed values: ``int(_,
    16)`` alone would also take surrounding whitespace and ``_`` between digits)."""
    if isinstance(value, str) and _HEX_QUANTITY.fullmatch(value):
        return int(value, 16)
    return None


def _suggested_range(texts: Sequence[str], from_block: int | None) -> tuple[int, int] | None:
    """The block range the provider proposes, from an explicit range or a stated maximum."""
    for text in texts:
        for _provider, pattern, base in _EXPLICIT_RANGES:
            m = pattern.search(text)
            if m:
                a, b = int(m["a"], base), int(m["b"], base)
                if a <= b:
                    return a, b
    if from_block is None:
        return None
    for text in texts:
        for pattern in _WIDTH_HINTS:
            m = pattern.search(text)
            if m:
                digits = m["n"].replace(",", "").replace(".", "")
                width = int(digits) * (1000 if m["k"] else 1)
                if width >= 1:
                    return from_block, from_block + width - 1
    return None


def _describe(calls: Sequence[_Call]) -> str:
    return calls[0].method if len(calls) == 1 else f"batch[{len(calls)}]"


class JsonRpcClient:
    """A JSON-RPC client over any :class:`~ingest.transports.Transport`.

    ``max_batch``: most calls per HTTP request (halved for good when the provider refuses a
    batch for its size; the current value is the attribute :attr:`max_batch`).
    ``concurrency``: worker threads running a large :meth:`batch`'s HTTP requests in parallel.
    ``rps``: most HTTP requests per second, retries included (None: unlimited).
    ``max_retries``: retries after the first attempt before the typed error is raised.
    ``backoff_base`` / ``backoff_max``: seconds, see the module docstring; ``backoff_max`` also
    caps a server's ``Retry-After``.
    ``timeout``: seconds for each HTTP request (connect, write, each read).
    ``logs_max_span``: widest ``eth_getLogs`` range, in blocks, that :meth:`get_logs` asks for.
    ``seed``: seeds the backoff jitter (reproducible runs and tests).
    ``sleep``: how to wait, in seconds (tests pass a recorder instead of :func:`time.sleep`).
    """

    def __init__(self, transport: Transport, *, max_batch: int = 100, concurrency: int = 4,
                 rps: float | None = None, max_retries: int = 8, backoff_base: float = 0.2,
                 backoff_max: float = 30.0, timeout: float = 60.0, logs_max_span: int = 10_000,
                 seed: int | None = None, sleep: Callable[[float], None] = time.sleep):
        checks: tuple[tuple[str, object, bool], ...] = (
            ("max_batch", max_batch, max_batch >= 1),
            ("concurrency", concurrency, concurrency >= 1),
            ("rps", rps, rps is None or (math.isfinite(rps) and rps > 0)),
            ("max_retries", max_retries, max_retries >= 0),
            ("backoff_base", backoff_base, backoff_base >= 0),
            ("backoff_max", backoff_max, backoff_max >= 0),
            ("timeout", timeout, timeout > 0),
            ("logs_max_span", logs_max_span, logs_max_span >= 1),
        )
        for name, value, ok in checks:
            if not ok:
                raise ConfigError(f"JsonRpcClient: invalid {name}={value!r}")
        self.transport = transport
        self.label: str = transport.label
        self.max_batch = max_batch
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.logs_max_span = logs_max_span
        self.logs_span = logs_max_span
        """Current ``eth_getLogs`` span in blocks: shrinks on :class:`RangeTooLarge`, regrows."""
        self.stats = RpcStats()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._bucket = _TokenBucket(rps, sleep)
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        # what the endpoint must never see echoed back into a message, table or log (the URL's
        # key); a transport names them in ``secrets`` (HttpTransport does)
        self._secrets: tuple[str, ...] = tuple(getattr(transport, "secrets", ()) or ())

    def __repr__(self) -> str:
        return f"JsonRpcClient({self.label!r})"

    def _error_fields(self, error: Any) -> tuple[int | None, str, Any]:
        """:func:`_error_fields` with the transport's secrets masked in the message and data: a
        provider may quote the key of the URL in its error ('invalid API key ...'), and the
        message goes into exceptions, warnings, logs and ``meta.runs.message``."""
        code, message, data = _error_fields(error)
        if not self._secrets:
            return code, message, data
        return code, redact_text(message, self._secrets), _redact_data(data, self._secrets)

    # ----------------------------------------------------------------- public API

    def call(self, method: str, params: list[Any]) -> Any:
        """The ``result`` of one JSON-RPC call (sent as a single request object, not a batch)."""
        return self._execute([self._make_call(method, params)], None)[0]

    def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The results of ``calls`` (``(method, params)`` pairs), in input order.

        Calls go out in HTTP requests of at most :attr:`max_batch` calls, run on up to
        ``concurrency`` threads. Either every result is returned or an error is raised; when one
        request fails for good, the others stop at their next attempt.
        """
        todo = [self._make_call(method, params) for method, params in calls]
        if not todo:
            return []
        size = self._batch_limit()
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        if len(chunks) == 1 or self.concurrency == 1:
            return [value for chunk in chunks for value in self._execute(chunk, None)]
        abort = threading.Event()
        pool = self._executor()
        futures: list[Future[list[Any]]] = [pool.submit(self._execute, c, abort) for c in chunks]
        wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.done() and not f.cancelled() and f.exception() is not None for f in futures):
            abort.set()
            for f in futures:
                f.cancel()
            wait(futures)
            for f in futures:  # the first real failure in input order
                if not f.cancelled():
                    exc = f.exception()
                    if exc is not None and not isinstance(exc, _Aborted):
                        raise exc
        return [value for f in futures for value in f.result()]

    def chain_id(self) -> int:
        """``eth_chainId`` as an int."""
        value = self.call("eth_chainId", [])
        chain = _quantity(value)
        if chain is None:
            raise RpcError(f"eth_chainId returned {value!r}, not a hex quantity", self.label,
                           "eth_chainId")
        return chain

    def check_chain_id(self, expected: int) -> None:
        """Raise :class:`ChainIdMismatch` unless the endpoint serves chain ``expected``."""
        actual = self.chain_id()
        if actual != expected:
            raise ChainIdMismatch(
                f"endpoint serves chain id {actual}, but chain id {expected} was declared",
                self.label, "eth_chainId")

    def get_logs(self, from_block: int, to_block: int, addresses: Sequence[str],
                 topics: Sequence[Sequence[str] | None]) -> list[dict[str, Any]]:
        """Every log in blocks ``[from_block, to_block]`` (inclusive), sorted by block and index.

        ``addresses``: contract addresses (any of them; empty means any contract).
        ``topics``: per topic position, the accepted values (any of them, at least one) or None
        for any value.
        The range is fetched in spans of at most :attr:`logs_span` blocks. When the provider
        refuses a span (:class:`RangeTooLarge`) the span shrinks to the provider's suggestion if
        it gave a smaller one, else to half, and that sub-range is fetched again; after
        4 consecutive successes the span doubles again, up to ``logs_max_span``. A single
        block that is still refused raises :class:`RangeTooLarge`, except for a query deadline
        (:data:`LOGS_TIMEOUT_SHAPES`), which is retried as a transient fault. Logs are returned
        exactly as received.
        """
        found: list[tuple[int, int, dict[str, Any]]] = []
        for start, end, logs in self._log_spans(from_block, to_block, addresses, topics, False):
            found.extend(self._checked_logs(logs, start, end))
        found.sort(key=lambda item: (item[0], item[1]))
        return [log for _, _, log in found]

    def get_logs_raw(self, from_block: int, to_block: int, addresses: Sequence[str],
                     topics: Sequence[Sequence[str] | None]) -> list[LogsPart]:
        """Like :meth:`get_logs` (same spans, splitting, retries and error handling), but each
        span's ``result`` array is returned as JSON bytes instead of Python objects.

        The bulk ingest path: the arrays go straight to DuckDB's JSON reader, which is several
        times faster than building a dict per log. A plain success answer is not parsed here
        at all, so the caller must check what :meth:`get_logs` checks: every log lies in its
        part's ``[start, end]`` and has a hex ``blockNumber``/``logIndex``, and the array is
        valid JSON (if it is not, refetch with :meth:`get_logs`, which retries a corrupt body).
        Any other answer is parsed and checked as in :meth:`get_logs`, then re-serialized.
        Parts are in block order; logs within a part in the node's order; empty parts omitted.
        """
        out: list[LogsPart] = []
        for start, end, res in self._log_spans(from_block, to_block, addresses, topics, True):
            if isinstance(res, _RawArray):
                body: bytes | memoryview = res.body
            else:
                checked = self._checked_logs(res, start, end)
                if not checked:
                    continue
                body = orjson.dumps([log for _, _, log in checked])
            if bytes(body[1:64]).strip(_WS) == b"]":
                continue  # empty array
            out.append(LogsPart(start, end, body))
        return out

    def _log_spans(self, from_block: int, to_block: int, addresses: Sequence[str],
                   topics: Sequence[Sequence[str] | None], raw: bool
                   ) -> Iterator[tuple[int, int, Any]]:
        """(start, end, result) per span, shrinking and regrowing the span (see get_logs)."""
        if from_block < 0 or to_block < from_block:
            raise ConfigError(f"invalid block range [{from_block}, {to_block}]")
        if isinstance(addresses, str):
            raise ConfigError("eth_getLogs addresses must be a list of addresses, not a string")
        for pos, accepted in enumerate(topics):
            # a node reads [] as "any value" (geth does), the opposite of "none of these"
            if accepted is not None and (isinstance(accepted, str) or not accepted):
                raise ConfigError(f"eth_getLogs topic position {pos}: give a non-empty list of "
                                  f"accepted values, or None for any value; got {accepted!r}")
        base: dict[str, Any] = {}
        if addresses:
            base["address"] = list(addresses)
        if topics:
            base["topics"] = [list(t) if t is not None else None for t in topics]
        self._check_open()
        start, streak = from_block, 0
        while start <= to_block:
            span = max(1, min(self.logs_span, self.logs_max_span))
            end = min(to_block, start + span - 1)
            params = {"fromBlock": hex(start), "toBlock": hex(end), **base}
            try:
                logs = self._execute([_Call("eth_getLogs", [params], raw)], None)[0]
            except RangeTooLarge as exc:
                width = end - start + 1
                if width == 1:
                    raise RangeTooLarge(
                        exc.code, f"{exc.rpc_message} [block {start} alone is refused and "
                                  "cannot be split further]",
                        exc.endpoint, exc.method, exc.data, exc.suggested) from exc
                self.logs_span = self._shrunk_span(width, exc.suggested)
                streak = 0
                with self._lock:
                    self.stats.splits += 1
                logger.debug("%s eth_getLogs: blocks [%d, %d] refused (%s); span now %d",
                             self.label, start, end, exc.rpc_message[:200], self.logs_span)
                continue
            yield start, end, logs
            start, streak = end + 1, streak + 1
            if streak >= _GROW_AFTER and self.logs_span < self.logs_max_span:
                self.logs_span = min(self.logs_max_span, self.logs_span * 2)
                streak = 0

    def close(self) -> None:
        """Stop the worker threads and close the transport (idempotent). Any later call raises
        :class:`ConfigError`."""
        with self._lock:
            pool, self._pool = self._pool, None
            closed, self._closed = self._closed, True
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if not closed:
            self.transport.close()

    def __enter__(self) -> JsonRpcClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _make_call(method: str, params: Sequence[Any]) -> _Call:
        if not isinstance(method, str) or not method:
            raise ConfigError(f"JSON-RPC method must be a non-empty string, got {method!r}")
        if not isinstance(params, list | tuple):
            raise ConfigError(f"{method}: params must be a list, got {type(params).__name__}")
        return _Call(method, list(params))

    def _check_open(self) -> None:
        """Raise :class:`ConfigError` once :meth:`close` was called (the transport is closed:
        httpx would raise an untyped RuntimeError, which the retry loop does not know)."""
        with self._lock:
            if self._closed:
                raise ConfigError(f"{self!r} is closed")

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._closed:
                raise ConfigError(f"{self!r} is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.concurrency,
                                                thread_name_prefix="deficit-rpc")
            return self._pool

    def _batch_limit(self) -> int:
        with self._lock:
            return self.max_batch

    def _shrink_batch(self, refused: int) -> None:
        """The provider refused ``refused`` calls in one request: halve the limit for good."""
        with self._lock:
            new = min(self.max_batch, max(1, refused // 2))
            changed = new < self.max_batch
            self.max_batch = new
            self.stats.batch_shrinks += 1
        if changed:
            logger.warning("%s refused a batch of %d calls; batch size is now %d",
                           self.label, refused, new)

    def _shrunk_span(self, width: int, suggested: tuple[int, int] | None) -> int:
        """The next span after ``width`` blocks were refused (suggestion if smaller, else half)."""
        if suggested is not None:
            proposed = suggested[1] - suggested[0] + 1
            if 1 <= proposed < width:
                return proposed
        return max(1, width // 2)

    def _checked_logs(self, logs: Any, start: int, end: int
                      ) -> list[tuple[int, int, dict[str, Any]]]:
        """(block, index, log) for each log, after checking it lies in the requested range."""
        if not isinstance(logs, list):
            raise RpcError(f"eth_getLogs [{start}, {end}] returned {type(logs).__name__}, "
                           "not a list", self.label, "eth_getLogs")
        out = []
        for log in logs:
            block = _quantity(log.get("blockNumber")) if isinstance(log, dict) else None
            index = _quantity(log.get("logIndex")) if isinstance(log, dict) else None
            if block is None or index is None or not start <= block <= end:
                raise RpcError(f"eth_getLogs [{start}, {end}] returned a log outside the range "
                               f"or without blockNumber/logIndex: {str(log)[:200]}",
                               self.label, "eth_getLogs")
            out.append((block, index, log))
        return out

    def _backoff(self, attempt: int, hint: float | None) -> float:
        """Sleep before retry ``attempt`` (1-based); returns the seconds slept."""
        if hint is not None:
            delay = min(hint, self.backoff_max)
        else:
            with self._lock:
                delay = self._rng.uniform(
                    0.0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))
        if delay > 0:
            self._sleep(delay)
        return delay

    # ----------------------------------------------------------------- the request loop

    def _execute(self, calls: list[_Call], abort: threading.Event | None) -> list[Any]:
        """Results of ``calls`` (at most :attr:`max_batch` of them) in order, or raise.

        Answered calls are kept; unanswered and retryable ones are resent (in smaller groups if
        the provider refused the batch size) until all are answered or the retries run out.
        """
        results: dict[int, Any] = {}
        todo = list(range(len(calls)))
        attempts = 0
        while todo:
            limit = self._batch_limit()
            retry: list[int] = []
            error: RpcError | None = None
            hint: float | None = None
            unsure: dict[int, RpcError] = {}  # position -> the failure that left it unknown
            for g in range(0, len(todo), limit):
                if abort is not None and abort.is_set():
                    raise _Aborted()
                group = todo[g:g + limit]
                outcome = self._attempt([calls[i] for i in group])
                for pos, value in outcome.values.items():
                    results[group[pos]] = value
                retry.extend(group[pos] for pos in outcome.pending)
                unsure.update((group[pos], cause)
                              for pos, cause in outcome.unsure_positions().items())
                if outcome.too_large:
                    self._shrink_batch(len(group))
                    retry.extend(todo[g + limit:])  # resend the rest in smaller groups
                    break
                if outcome.error is not None:
                    error = outcome.error
                    if outcome.wait is not None:
                        hint = outcome.wait if hint is None else max(hint, outcome.wait)
            todo = sorted(retry)
            changing = [i for i in todo if i in unsure and _changes_state(calls[i].method)]
            if changing:
                cause = unsure[changing[0]]
                cause.add_note(f"{calls[changing[0]].method} not resent: the node may have acted "
                               "on it already")
                raise cause
            if not todo or error is None:  # done, or only a batch-size change: resend at once
                continue
            attempts += 1
            if attempts > self.max_retries:
                logger.warning("%s %s: giving up after %d attempts: %s", self.label,
                               _describe([calls[i] for i in todo]), attempts, error)
                error.add_note(f"gave up after {attempts} attempts")
                raise error
            if abort is not None and abort.is_set():
                raise _Aborted()
            with self._lock:
                self.stats.retries += 1
            delay = self._backoff(attempts, hint)
            logger.debug("%s %s: retry %d/%d after %.3f s: %s", self.label,
                         _describe([calls[i] for i in todo]), attempts, self.max_retries,
                         delay, error)
        return [results[i] for i in range(len(calls))]

    def _attempt(self, calls: list[_Call]) -> _Outcome:
        """Send ``calls`` in one HTTP request and sort out what came back.

        Returns the answered values and the positions to resend (with the reason), or raises
        the error that ends the call: :class:`RangeTooLarge`, a non-retryable
        :class:`RpcResponseError` or :class:`RpcHttpError`.
        """
        with self._lock:
            ids = [next(self._ids) for _ in calls]
        requests = [{"jsonrpc": "2.0", "id": i, "method": c.method, "params": c.params}
                    for i, c in zip(ids, calls, strict=True)]
        body = orjson.dumps(requests if len(calls) > 1 else requests[0])
        self._check_open()
        self._bucket.acquire()
        with self._lock:
            self.stats.requests += 1
            self.stats.calls += len(calls)
        everything = list(range(len(calls)))
        try:
            response = self.transport.send(body, timeout=self.timeout)
        except RpcTransportError as exc:
            return _Outcome(pending=everything, error=exc)
        with self._lock:
            self.stats.bytes_received += len(response.body)
        if len(calls) == 1 and calls[0].raw and 200 <= response.status < 300:
            arr = _raw_result(response.body, ids[0])
            if arr is not None:
                return _Outcome(values={0: _RawArray(arr)})
        doc = _loads(response.body, all(c.method in _HEX_ONLY_METHODS for c in calls))
        if not 200 <= response.status < 300:
            return self._http_failure(calls, ids, response, doc)
        if doc is _INVALID:
            return _Outcome(pending=everything, error=RpcTransportError(
                f"response body is not complete JSON ({len(response.body)} bytes)",
                self.label, _describe(calls)))
        return self._answers(calls, ids, doc)

    def _http_failure(self, calls: list[_Call], ids: list[int], response: HttpResponse,
                      doc: Any) -> _Outcome:
        """Handle a non-2xx answer (see the module table)."""
        status, what = response.status, _describe(calls)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "unknown status"
        everything = list(range(len(calls)))
        if status in RETRYABLE_HTTP_STATUSES or status == 413:
            # A size refusal spelled out in the body (QuickNode answers 413 with a JSON-RPC
            # error) wins over the status: the same request would only be refused again.
            if self._refuses_size(calls, doc):
                return _Outcome(pending=everything, too_large=True)
            if status == 413 and not self._transient_logs_error(calls, doc):
                if len(calls) > 1:
                    return _Outcome(pending=everything, too_large=True)
                if calls[0].method == "eth_getLogs":
                    # QuickNode may say it in plain text ("eth_getLogs and eth_newFilter are
                    # limited to a 10,000 blocks range"): its width is read as from JSON-RPC
                    text = self._plain_text(response.body, doc)
                    params = calls[0].params[0] if calls[0].params and isinstance(
                        calls[0].params[0], Mapping) else {}
                    suggested = _suggested_range((text.lower(),),
                                                 _quantity(params.get("fromBlock")))
                    raise RangeTooLarge(None, f"HTTP 413 {reason}" + (f": {text}" if text else ""),
                                        self.label, what, suggested=suggested)
                raise RpcHttpError(status, reason, self.label, what)
            wait = _retry_after(response.headers.get("retry-after"))
            if wait is None:  # Infura: HTTP 429 and the wait in the JSON-RPC error's data
                wait = _body_backoff_hint(doc)
            return _Outcome(pending=everything, error=RpcHttpError(status, reason, self.label,
                                                                   what), wait=wait)
        if not _is_rpc_answer(doc):
            raise RpcHttpError(status, reason, self.label, what)
        if len(calls) > 1:
            doc = _batch_level_error(doc)
        if len(calls) > 1 and isinstance(doc, Mapping) and doc.get("error") is not None:
            # One error for the whole batch, and the status says it is final (Alchemy's 401
            # "Must be authenticated!"): no point resending, unless it is about the size.
            code, message, data = self._error_fields(doc["error"])
            texts = _texts(message, data)
            if _matches(BATCH_TOO_LARGE_SHAPES, code, texts):
                return _Outcome(pending=everything, too_large=True)
            if not _matches(RETRYABLE_ERROR_SHAPES, code, texts):
                raise RpcResponseError(code, message, self.label, what, data)
        return self._answers(calls, ids, doc)  # e.g. Alchemy answers some errors with HTTP 400

    def _plain_text(self, body: bytes, doc: Any) -> str:
        """A non-JSON-RPC error body as one line of text (at most 300 characters, secrets
        masked): the body itself, or the string it encodes as JSON; "" for anything else."""
        if isinstance(doc, str):
            text = doc
        elif doc is _INVALID:
            text = body[:4096].decode("utf-8", "replace")
        else:
            return ""
        if self._secrets:
            text = redact_text(text, self._secrets)
        return " ".join(text.split())[:300]

    def _transient_logs_error(self, calls: list[_Call], doc: Any) -> bool:
        """Whether ``doc`` holds a query deadline for a lone single-block ``eth_getLogs``."""
        if len(calls) != 1:
            return False
        for item in doc if isinstance(doc, list) else [doc]:
            if isinstance(item, Mapping) and item.get("error") is not None:
                code, message, data = self._error_fields(item["error"])
                if _single_block_timeout(calls[0], code, _texts(message, data)):
                    return True
        return False

    def _refuses_size(self, calls: list[_Call], doc: Any) -> bool:
        """Whether ``doc`` refuses the batch for its size (returns True) or, for a single
        ``eth_getLogs``, refuses its range (raises :class:`RangeTooLarge`)."""
        items = doc if isinstance(doc, list) else [doc]
        for item in items:
            if not isinstance(item, Mapping) or item.get("error") is None:
                continue
            code, message, data = self._error_fields(item["error"])
            texts = _texts(message, data)
            if len(calls) > 1 and _matches(BATCH_TOO_LARGE_SHAPES, code, texts):
                return True
            if len(calls) == 1 and calls[0].method == "eth_getLogs":
                self._raise_if_range(calls[0], code, message, data, texts)
        return False

    def _raise_if_range(self, call: _Call, code: int | None, message: str, data: Any,
                        texts: Sequence[str]) -> None:
        """Raise :class:`RangeTooLarge` if this ``eth_getLogs`` error refuses the range (not for
        a query deadline on a single block: see :func:`_single_block_timeout`)."""
        if call.method != "eth_getLogs" or not _matches(LOGS_LIMIT_SHAPES, code, texts):
            return
        if _single_block_timeout(call, code, texts):
            return
        params = call.params[0] if call.params and isinstance(call.params[0], Mapping) else {}
        suggested = _suggested_range(texts, _quantity(params.get("fromBlock")))
        raise RangeTooLarge(code, message, self.label, call.method, data, suggested)

    def _answers(self, calls: list[_Call], ids: list[int], doc: Any) -> _Outcome:
        """Match a decoded 2xx (or JSON-RPC shaped) body to the calls by id."""
        as_batch = len(calls) > 1
        what = _describe(calls)
        everything = list(range(len(calls)))
        if not as_batch and isinstance(doc, list) and len(doc) == 1:
            doc = doc[0]  # a lone call answered inside a list: lenient
        if as_batch:
            doc = _batch_level_error(doc)
        if as_batch and isinstance(doc, Mapping):
            # One object for the whole batch: a batch-level refusal, or a fault to retry.
            if doc.get("error") is None:
                return _Outcome(pending=everything, error=RpcTransportError(
                    "batch answered with a single object, not a list", self.label, what))
            code, message, data = self._error_fields(doc["error"])
            if _matches(BATCH_TOO_LARGE_SHAPES, code, _texts(message, data)):
                return _Outcome(pending=everything, too_large=True)
            return _Outcome(pending=everything, wait=_backoff_hint(data),
                            error=RpcResponseError(code, message, self.label, what, data))
        items = doc if as_batch else [doc]
        if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
            return _Outcome(pending=everything, error=RpcTransportError(
                "answer is not a JSON-RPC response object or list of them", self.label, what))
        position = {rid: pos for pos, rid in enumerate(ids)}
        answered: dict[int, Mapping[str, Any]] = {}
        for item in items:
            rid = _response_id(item.get("id"))
            if rid is None and not as_batch and item.get("error") is not None:
                rid = ids[0]  # a lone call's error with "id": null is still its error
            pos = position.get(rid) if rid is not None else None
            if pos is None or pos in answered:
                return _Outcome(pending=everything, error=RpcTransportError(
                    f"answer has an unknown or repeated id {item.get('id')!r}", self.label,
                    what))
            answered[pos] = item
        # A size refusal anywhere in a batch means: resend everything unanswered, smaller.
        too_large = as_batch and any(
            _matches(BATCH_TOO_LARGE_SHAPES, *_code_texts(i["error"]))
            for i in answered.values() if i.get("error") is not None)
        unsure: dict[int, RpcError] = {}  # no answer: the node may have acted on them
        outcome = _Outcome(too_large=too_large, unsure=unsure)
        missing = RpcTransportError(f"answer has no response for {len(calls) - len(answered)} "
                                    f"of {len(calls)} ids", self.label, what)
        for pos in everything:
            item = answered.get(pos)
            if item is None:
                outcome.pending.append(pos)
                unsure[pos] = missing
                outcome.error = outcome.error or missing
            elif item.get("error") is not None:
                if too_large:
                    outcome.pending.append(pos)
                    continue
                call = calls[pos]
                code, message, data = self._error_fields(item["error"])
                texts = _texts(message, data)
                self._raise_if_range(call, code, message, data, texts)
                if not (_matches(RETRYABLE_ERROR_SHAPES, code, texts)
                        or _single_block_timeout(call, code, texts)):
                    raise RpcResponseError(code, message, self.label, call.method, data)
                outcome.pending.append(pos)
                outcome.error = RpcResponseError(code, message, self.label, call.method, data)
                hint = _backoff_hint(data)
                if hint is not None:
                    outcome.wait = hint if outcome.wait is None else max(outcome.wait, hint)
            elif "result" in item:
                outcome.values[pos] = item["result"]
            else:
                outcome.pending.append(pos)
                unsure[pos] = RpcTransportError(
                    f"response for id {ids[pos]} has neither result nor error", self.label,
                    calls[pos].method)
                outcome.error = outcome.error or unsure[pos]
        if too_large:
            outcome.error = None
        return outcome


def _single_block_timeout(call: _Call, code: int | None, texts: Sequence[str]) -> bool:
    """Whether this is an ``eth_getLogs`` over one block refused by a query deadline
    (:data:`LOGS_TIMEOUT_SHAPES`): no smaller range exists, so it is retried as transient."""
    if call.method != "eth_getLogs" or not _matches(LOGS_TIMEOUT_SHAPES, code, texts):
        return False
    params = call.params[0] if call.params and isinstance(call.params[0], Mapping) else {}
    start = _quantity(params.get("fromBlock"))
    return start is not None and start == _quantity(params.get("toBlock"))


def _code_texts(error: Any) -> tuple[int | None, tuple[str, ...]]:
    code, message, data = _error_fields(error)
    return code, _texts(message, data)


def _batch_level_error(doc: Any) -> Any:
    """A batch's answer with a batch-level error wrapped in an array, as JSON-RPC 2.0 section 6
    has it (``[{"id": null, "error": ...}]``, Erigon's "batch limit N exceeded"), unwrapped to
    the bare error object most servers send; any other answer unchanged."""
    if (isinstance(doc, list) and len(doc) == 1 and isinstance(doc[0], Mapping)
            and doc[0].get("id") is None and doc[0].get("error") is not None):
        return doc[0]
    return doc


def _response_id(value: Any) -> int | None:
    """A response id as int (some proxies echo ints as strings); None if absent or foreign."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _is_rpc_answer(doc: Any) -> bool:
    """Whether a decoded body looks like JSON-RPC response(s), not an HTML or proxy page."""
    items = doc if isinstance(doc, list) else [doc]
    return bool(items) and all(
        isinstance(i, Mapping) and ("result" in i or "error" in i) for i in items)
