"""The ingest error tree: every failure is typed and says what and where.

::

    IngestError
    ├── ConfigError              bad CLI option, deployments file, preset or dataset name
    │   └── DeploymentsFileError   a TOML deployments file is wrong (file, line, field)
    ├── RpcError                 the node or provider failed us
    │   ├── RpcTransportError      connection refused/reset, timeout, truncated or non-JSON body
    │   ├── RpcHttpError           HTTP status the client will not (or no longer) retry
    │   ├── RpcResponseError       a JSON-RPC ``error`` object (code, message)
    │   │   └── RangeTooLarge        eth_getLogs range/result/response-size limits (splittable)
    │   └── ChainIdMismatch        the endpoint serves another chain than declared
    ├── ChainDataError           the node's answers contradict each other or the stored chain
    │   ├── InconsistentLogError   a log's block hash differs from its block's hash
    │   └── BrokenChainError       a block's parent hash does not link to the stored block below
    ├── DecodeError              a payload does not decode under its declared ABI (block, log index, field)
    │   └── ValueOutOfRange        a decoded value does not fit its declared column type
    ├── WarehouseError           the DuckDB file cannot be used
    │   └── WarehouseLocked        another process holds the write lock
    └── PriceImportError         a reference-price file is malformed (file, line, field)

Messages never contain an RPC URL with its secret: use :func:`ingest.redact.redact_url`.
"""

from __future__ import annotations

__all__ = [
    "BrokenChainError",
    "ChainDataError",
    "ChainIdMismatch",
    "ConfigError",
    "DecodeError",
    "DeploymentsFileError",
    "InconsistentLogError",
    "IngestError",
    "PriceImportError",
    "RangeTooLarge",
    "RpcError",
    "RpcHttpError",
    "RpcResponseError",
    "RpcTransportError",
    "ValueOutOfRange",
    "WarehouseError",
    "WarehouseLocked",
    "is_interrupt",
]


def is_interrupt(e: BaseException) -> bool:
    """Whether ``e`` is Ctrl-C or SIGTERM rather than a failure: a KeyboardInterrupt, or the
    ``RuntimeError('Query interrupted')`` that DuckDB's Python client (2.x) raises instead when
    the signal arrives while one of its queries runs (the KeyboardInterrupt itself is gone)."""
    return isinstance(e, KeyboardInterrupt) or (type(e) is RuntimeError and str(e) == "Query interrupted")


class IngestError(Exception):
    """Base of every error raised by :mod:`ingest`."""


class ConfigError(IngestError):
    """A user-supplied option, preset, dataset name or deployment is invalid."""


class DeploymentsFileError(ConfigError):
    """A deployments TOML file is malformed; the message names file, line and field."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        where = path if line is None else f"{path}:{line}"
        if field:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field = path, line, field


class RpcError(IngestError):
    """The JSON-RPC endpoint failed; ``endpoint`` is always the redacted label."""

    def __init__(self, message: str, endpoint: str = "", method: str = ""):
        prefix = " ".join(p for p in (endpoint, method) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.endpoint, self.method = endpoint, method


class RpcTransportError(RpcError):
    """Connection failure, timeout, or a body that is not complete JSON."""


class RpcHttpError(RpcError):
    """An HTTP status the client gave up on (after retries where retrying makes sense)."""

    def __init__(self, status: int, message: str, endpoint: str = "", method: str = ""):
        super().__init__(f"HTTP {status}: {message}", endpoint, method)
        self.status = status


class RpcResponseError(RpcError):
    """A JSON-RPC error object returned by the node."""

    def __init__(self, code: int | None, message: str, endpoint: str = "", method: str = "",
                 data: object = None):
        super().__init__(f"JSON-RPC error {code}: {message}", endpoint, method)
        self.code, self.rpc_message, self.data = code, message, data


class RangeTooLarge(RpcResponseError):
    """eth_getLogs refused the block range or result size; the caller should split the range.

    ``suggested`` is a (from, to) block range when the provider proposed one (Alchemy does).
    """

    def __init__(self, code: int | None, message: str, endpoint: str = "", method: str = "",
                 data: object = None, suggested: tuple[int, int] | None = None):
        super().__init__(code, message, endpoint, method, data)
        self.suggested = suggested


class ChainIdMismatch(RpcError):
    """``eth_chainId`` differs from the chain the user declared."""


class ChainDataError(IngestError):
    """The node's answers contradict each other or the chain already stored."""


class InconsistentLogError(ChainDataError):
    """A log's ``blockHash`` is not the hash of the block fetched at its height."""


class BrokenChainError(ChainDataError):
    """A block's ``parentHash`` does not match the stored hash of the block below it."""


class DecodeError(IngestError):
    """A log or call result does not decode under its declared ABI.

    Carries the location so the message says exactly which row is bad.
    """

    def __init__(self, message: str, *, block_number: int | None = None,
                 log_index: int | None = None, tx_hash: str | None = None,
                 event: str | None = None, field: str | None = None):
        parts = []
        if event:
            parts.append(f"event {event}")
        if block_number is not None:
            parts.append(f"block {block_number}")
        if log_index is not None:
            parts.append(f"log index {log_index}")
        if tx_hash:
            parts.append(f"tx {tx_hash}")
        if field:
            parts.append(f"field {field!r}")
        super().__init__(f"{', '.join(parts)}: {message}" if parts else message)
        self.block_number, self.log_index, self.tx_hash = block_number, log_index, tx_hash
        self.event, self.field = event, field


class ValueOutOfRange(DecodeError):
    """A decoded value does not fit its declared column (e.g. > 2**128-1 for UHUGEINT)."""


class WarehouseError(IngestError):
    """The DuckDB warehouse cannot be opened or written."""


class WarehouseLocked(WarehouseError):
    """Another process holds the warehouse's write lock (a concurrent ingest)."""


class PriceImportError(IngestError):
    """A reference-price file is malformed; nothing from it was imported."""

    def __init__(self, path: str, message: str, line: int | None = None, field: str | None = None):
        where = path if line is None else f"{path}:{line}"
        if field:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.field = path, line, field
