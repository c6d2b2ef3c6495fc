"""Keep RPC endpoint secrets out of labels, messages, logs and tracebacks.

Hosted providers put the API key in the URL, in one of three places:

* a path segment: Alchemy ``/v2/<key>``, Infura ``/v3/<key>``, QuickNode ``/<token>/``,
  Ankr ``/eth/<key>``, Chainstack ``/<key>``;
* a query parameter: ``?apikey=<key>``, ``?key=<key>``, ``?token=<key>``;
* the userinfo: ``https://user:<password>@host``.

:func:`redact_url` turns a URL into a label that is safe to print, store in ``meta.runs`` and put
in exception messages: it keeps only what identifies the provider (scheme, host, port) and marks
where something was hidden. :func:`redact_text` scrubs free text (for example a third-party
exception message) of a known set of secret URLs and of every secret-looking part of them.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

__all__ = ["MASK", "MIN_SECRET_SEGMENT", "redact_text", "redact_url"]

MASK = "***"
"""What replaces every hidden part."""

MIN_SECRET_SEGMENT = 16
"""A path segment this long (characters) is treated as a key by :func:`redact_text`.

Provider keys are 32-64 characters (Alchemy 32, Infura 32 hex, QuickNode 40 hex, Ankr 64 hex);
route words (``v2``, ``eth``, ``mainnet``) are far shorter, so masking them in free text would
only make messages unreadable.
"""


def _host_port(netloc: str) -> str:
    """``netloc`` without its userinfo (IPv6 brackets and the port are kept as written)."""
    return netloc.rpartition("@")[2]


def _userinfo_cut_short(parts: SplitResult) -> bool:
    """Whether an ``@`` after the netloc says the userinfo held an unencoded ``/``, ``?`` or
    ``#`` (``https://user:ab/cd@host``: a base64 password), which ended the netloc inside the
    password: what urlsplit calls host and port is then the user name and part of the password.
    """
    return "@" in parts.path or "@" in parts.query or "@" in parts.fragment


def redact_url(url: str) -> str:
    """A label for ``url`` that is safe to print: ``scheme://host[:port]`` plus markers.

    * ``/***`` is appended when the URL has any non-empty path segment: any segment may be a key
      (QuickNode's token is the whole path), so the label keeps none of them.
    * ``?***`` is appended when the URL has a query string (``?apikey=...``).
    * ``user:password@`` is dropped; the fragment (never sent to the server) is dropped.

    ``http://127.0.0.1:8545`` has nothing to hide and is returned unchanged. A string that is not
    an absolute URL with a host is returned as ``***``: it cannot be shown safely; so is a URL
    with an ``@`` after its netloc (a userinfo with an unencoded ``/``, ``?`` or ``#``, whose
    start urlsplit would take for the host).
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return MASK
    host_port = _host_port(parts.netloc)
    if not parts.scheme or not host_port or _userinfo_cut_short(parts):
        return MASK
    label = f"{parts.scheme.lower()}://{host_port}"
    if any(segment for segment in parts.path.split("/")):
        label += "/" + MASK
    if parts.query:
        label += "?" + MASK
    return label


def _secret_components(url: str) -> set[str]:
    """The parts of ``url`` that may be secrets, raw and percent-decoded."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return set()
    found: set[str] = set()
    userinfos: list[str] = []
    userinfo, at, host_port = parts.netloc.rpartition("@")
    if at and userinfo:
        userinfos.append(userinfo)
    if _userinfo_cut_short(parts):  # the userinfo runs up to the last '@'
        userinfos.append(url.strip().partition("://")[2].rpartition("@")[0])
    for userinfo in userinfos:
        found.add(userinfo)
        found.update(p for p in userinfo.split(":", 1) if p)
    if parts.scheme and host_port:
        # The URL without its userinfo, as clients such as httpx print it.
        bare = f"{parts.scheme}://{host_port}{parts.path}"
        if parts.path.strip("/"):
            found.add(bare)
        if parts.query:
            found.add(f"{bare}?{parts.query}")
    if parts.path.strip("/"):
        # the path as a whole, as a provider's error quotes the request ('invalid key in
        # /v3/<key>'): a key shorter than MIN_SECRET_SEGMENT is masked there too
        found.add(parts.path)
        if parts.query:
            found.add(f"{parts.path}?{parts.query}")
    found.update(s for s in parts.path.split("/") if len(s) >= MIN_SECRET_SEGMENT)
    if parts.query:
        found.add(parts.query)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            # ``?<token>`` without ``=`` parses as a key with a blank value: the key is the secret.
            if value:
                found.add(value)
            elif key:
                found.add(key)
        for item in parts.query.split("&"):  # as written too: parse_qsl turns '+' into ' '
            key, eq, value = item.partition("=")
            found.add(value if eq else key)
    found |= {unquote(s) for s in found}
    for userinfo in userinfos:
        # as an Authorization header carries it (base64 of 'user:password', percent-decoded
        # first as httpx does), which a provider's error may quote back
        found.add(base64.b64encode(unquote(userinfo).encode()).decode())
    found.discard("")
    return found


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret, and of its secret-looking parts, masked.

    Each item of ``secrets`` is usually an endpoint URL; it is masked whole, and so are its
    userinfo (the user name and password alone, and its base64 form as a Basic Authorization
    header carries it), its query string and query values, its path as a whole (``/v3/<key>``,
    as a provider's error may quote the request) and its path segments of at least
    :data:`MIN_SECRET_SEGMENT` characters alone, in raw and percent-decoded form. A secret that is
    not a URL (a bare API key or header value) is masked as given; a URL
    with nothing to hide (``http://127.0.0.1:8545``) stays readable.
    Matching ignores case (a provider may echo a hex key in the other case); query values are
    masked as written and decoded. Longer needles are replaced first, so a URL disappears as a
    whole rather than piecemeal.
    """
    needles: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        if redact_url(secret) != secret.strip().rstrip("/"):  # something in it needs hiding
            needles.add(secret)
        needles |= _secret_components(secret)
    for needle in sorted(needles, key=len, reverse=True):
        # in any case: a provider may echo a hex key upper- or lower-cased
        text = re.sub(re.escape(needle), MASK, text, flags=re.IGNORECASE)
    return text
