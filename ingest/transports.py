"""The one place where ingest touches the network: a :class:`Transport` POSTs a JSON body.

This is httpx's transport seam applied to JSON-RPC. :class:`ingest.rpc.JsonRpcClient` owns the
protocol (ids, batching, retries, rate limits, range splitting) and never sees a socket; a
transport owns the bytes on the wire and nothing else. Tests swap in a fake transport to replay
recordings or inject faults, and nothing above this module changes.

A transport never lets the endpoint URL escape: it is known by its :attr:`Transport.label`
(:func:`ingest.redact.redact_url`), and every failure is re-raised as
:class:`TransportTimeout` or :class:`TransportConnectError` carrying only that label. httpx's own
exceptions (whose ``request`` holds the full URL) are dropped, ``from None``, so even a
traceback cannot show the key. For the same reason the ``httpx`` and ``httpcore`` loggers are
held at WARNING: httpx logs every request URL at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx

from .errors import ConfigError, RpcTransportError
from .redact import redact_text, redact_url

__all__ = [
    "HttpResponse",
    "HttpTransport",
    "Transport",
    "TransportConnectError",
    "TransportTimeout",
]

for _name in ("httpx", "httpcore"):
    _logger = logging.getLogger(_name)
    if _logger.level < logging.WARNING:  # NOTSET (0) included; a stricter user setting is kept
        _logger.setLevel(logging.WARNING)


_ILLEGAL_IN_HEADER = frozenset(chr(c) for c in (*range(0x20), 0x7F)) - {"\t"}
"""Control characters HTTP/1.1 does not allow in a header field (a tab is allowed)."""


class TransportTimeout(RpcTransportError):
    """Connecting, sending or reading took longer than the request's timeout."""


class TransportConnectError(RpcTransportError):
    """The connection could not be made, or broke (refused, reset, closed mid-response)."""


@dataclass(frozen=True)
class HttpResponse:
    """One HTTP answer, whatever its status.

    ``headers`` has lower-cased names; ``body`` is the raw (decompressed) bytes, not parsed:
    deciding whether it is complete JSON is the client's job.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


@runtime_checkable
class Transport(Protocol):
    """Sends one JSON-RPC request body and returns the HTTP answer.

    ``send`` returns every HTTP status (429 and 5xx included) as an :class:`HttpResponse`; it
    raises only :class:`TransportTimeout`, :class:`TransportConnectError` or another
    :class:`~ingest.errors.RpcTransportError` when no complete answer arrived. It must be safe
    to call from several threads at once (the client runs batches on a thread pool).
    """

    label: str
    """The redacted endpoint, safe to print (see :func:`ingest.redact.redact_url`)."""

    def send(self, body: bytes, *, timeout: float) -> HttpResponse:
        """POST ``body`` (JSON); ``timeout`` in seconds bounds connect, write and each read."""
        ...

    def close(self) -> None:
        """Release connections; further sends are not allowed."""
        ...


class HttpTransport:
    """JSON-RPC over HTTP(S) with one pooled, keep-alive ``httpx.Client`` (HTTP/1.1).

    ``url`` may carry the API key in its path, query or userinfo (userinfo becomes HTTP basic
    auth); it is kept private and only :attr:`label` is ever shown. ``headers`` are sent with every
    request (for example a bearer token) and are treated as secrets too. ``pool_size`` is the
    maximum number of open connections; match it to the client's ``concurrency`` so parallel
    batches reuse warm connections instead of opening new ones.
    """

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None,
                 pool_size: int = 8):
        self.label = redact_url(url)
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"RPC URL {self.label} is not an http(s) URL with a host")
        try:  # what httpx would refuse at every send (a control character, a port 'ab')
            httpx.URL(url)
        except (httpx.InvalidURL, ValueError):
            raise ConfigError(f"RPC URL {self.label} is not valid") from None
        for name, value in (headers or {}).items():
            # h11 refuses these at every send, quoting the whole value (a secret) in its error
            if any(c in _ILLEGAL_IN_HEADER for c in f"{name}{value}"):
                raise ConfigError(f"RPC header {name!r} has a control character (CR, LF, "
                                  "NUL, ...) in its name or value")
        if pool_size < 1:
            raise ConfigError(f"pool_size must be at least 1, got {pool_size}")
        self._url = url
        values = list((headers or {}).values())
        # 'Bearer <token>': a provider rejecting the token quotes the token alone
        self._secrets = (url, *values, *(w for v in values for w in v.split()[1:]))
        try:
            self._client = httpx.Client(
                http1=True, http2=False, follow_redirects=False,
                headers={"content-type": "application/json", "accept": "application/json",
                         **(headers or {})},
                limits=httpx.Limits(max_connections=pool_size,
                                    max_keepalive_connections=pool_size),
            )
        except (httpx.InvalidURL, ValueError):
            raise ConfigError(f"RPC URL {self.label} is not valid") from None

    def __repr__(self) -> str:
        return f"HttpTransport({self.label!r})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The URL and header values (and the words after a value's first, the credential of
        ``Bearer <token>``): :class:`~ingest.rpc.JsonRpcClient` masks them in what the endpoint
        answers (an error message quoting the key)."""
        return self._secrets

    def _describe(self, exc: Exception) -> str:
        """httpx's message for ``exc`` with every secret masked (it may quote the URL)."""
        detail = redact_text(str(exc), self._secrets).strip()
        return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__

    def send(self, body: bytes, *, timeout: float) -> HttpResponse:
        """POST ``body``; see :meth:`Transport.send`. Raises the typed errors ``from None``."""
        if self._client.is_closed:  # httpx: an untyped RuntimeError
            raise ConfigError(f"{self!r} is closed")
        error: RpcTransportError
        try:
            response = self._client.post(self._url, content=body, timeout=timeout)
            return HttpResponse(
                status=response.status_code,
                headers={k.lower(): v for k, v in response.headers.items()},
                body=response.content,
            )
        except httpx.TimeoutException as exc:
            error = TransportTimeout(f"no answer within {timeout:g} s ({self._describe(exc)})",
                                     self.label)
        except httpx.TransportError as exc:
            error = TransportConnectError(f"connection failed ({self._describe(exc)})",
                                          self.label)
        except httpx.RequestError as exc:  # DecodingError (corrupt gzip), TooManyRedirects
            error = RpcTransportError(f"unusable response ({self._describe(exc)})", self.label)
        # Raised outside the ``except`` blocks so the httpx exception, whose ``request`` holds the
        # URL, is not even kept as ``__context__``.
        raise error from None

    def close(self) -> None:
        """Close the pooled connections (idempotent); a later :meth:`send` raises
        :class:`ConfigError`."""
        self._client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
