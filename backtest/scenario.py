"""Scenarios: what to replay and under which assumptions, loaded from TOML.

::

    name = "eth-crash-2021"
    chain_id = 1
    mode = "counterfactual"            # historical | counterfactual
    warehouse = "data/warehouse.duckdb" # optional; relative to this file's folder; --db overrides
    seed = 7                           # seeds Monte Carlo shocks (default 0); top level, so before
                                       # the first [table] (after one it would be that table's key)

    [window]                           # from_block/to_block, or from/to ISO UTC times
    from_block = 100
    to_block = 200                     # inclusive

    [market]
    protocol = "aave_v3"               # adapter (protocols.registry)
    source = "aave_v3_ethereum"        # the deployment name used when ingesting
    dataset = "aave_v3"                # optional, default = protocol
    rules = "3.0"                      # Aave v3 only: 3.0 to 3.5, the Pool's version at the market's
                                       # first ingested block (later upgrades follow Upgraded logs);
                                       # required unless the pool is a known deployment (mainnet)
    [market.asset_decimals]            # Aave v2 only: token decimals (no v2 event carries them)
    "0xa0b8...eb48" = 6                #   the underlying's ERC-20 decimals()
    [market.asset_treasuries]          # Aave v2 only: aToken RESERVE_TREASURY_ADDRESS() per asset
    "0xa0b8...eb48" = "0x464c...7c8c"

    [oracle]                           # see backtest.oracle
    model = "protocol"                 # protocol | reference | republish
    delay_s = 0                        # added latency (seconds or blocks)
    delay_blocks = 0
    min_answer = 1                     # optional bounds on raw answers (all feeds)
    max_answer = 1000000000000000
    deviation_bps = 50                 # republish only; without it (or heartbeat_s), each feed's
    heartbeat_s = 3600                 # own as the deployments declared it (raw.oracle_feeds)

    [reference]                        # optional off-chain reference path (raw.reference_prices)
    source = "binance-ethusdt"         # optional: raw.reference_prices.source
    max_gap_s = 600                    # optional: longest hole in the path the window may hold
                                       # a price over (default: 10x the series' median interval)
    at_par = ["USDT"]                  # stablecoin quotes taken as the market's USD at 1:1; a pair
                                       # quoted in one (ETH/USDT) is refused in a USD market without
    [reference.pairs]                  # feed (proxy address) -> pair
    "0x5f4ec3df9cbd43714fe2740f5e3616155c5b8419" = "ETH/USD"

    [liquidator]                       # see backtest.liquidator
    reaction_delay_blocks = 1
    gas_units = 400000
    priority_fee_wei = 1000000000
    gas_price_key = "0xc02a..."        # price key of ETH (to value gas), e.g. WETH's address
    min_profit_usd = 0                 # amounts end in the market's base currency: _usd for
                                       # Aave v3, _eth for Aave v2 (min_profit_eth, depth_eth,
                                       # dust_eth); the other suffix is refused
    capacity_per_block = 0             # 0 = unlimited
    repeat_in_block = true             # counterfactual: liquidate an account again in the same
                                       # block while it stays liquidatable and it pays
    flash_loans = true
    flash_fee_bps = 5                  # with flash loans only
    prices = "oracle"                  # oracle | reference: the prices the liquidator values its
                                       # trade at (debt bought, collateral sold, gas, min_profit);
                                       # "reference" needs [reference]; the protocol's amounts stay
                                       # at the oracle's (see backtest.liquidator)
    [liquidator.slippage."0xc02a..."]  # per collateral asset: depth_usd (constant product) or
    depth_usd = 50000000               # table = [[size_usd, bps], ...]
    # [liquidator.inventory]           # flash_loans = false only, and required then: the
    # "0xa0b8..." = 1000000000000      # debt-asset base units the bot repays from

    [overrides]                        # counterfactual mode only
    close_factor_bps = 5000            # caps the debt the liquidator model asks to cover
    [[overrides.reserve]]
    asset = "0xc02a..."                # a listed reserve (address)
    liquidation_threshold_bps = 8000   # liquidation_bonus_bps (10000 + premium: 10500),
                                       # liquidation_protocol_fee_bps (Aave v3). ltv_bps, supply_cap
                                       # and borrow_cap are refused: with user actions frozen they
                                       # cannot change a result. Accounts in an e-mode category
                                       # covering the reserve keep the category's threshold and bonus
    [[overrides.emode]]                # Aave v3: an e-mode category's parameters, which its
    category = 1                       # accounts are liquidated by instead of their reserves'
    liquidation_threshold_bps = 9000   # and liquidation_bonus_bps (10000 + premium)

    [finality]
    depth_blocks = 64                  # a block is final this many blocks later
    wait_blocks = 0                    # liquidations wait this many blocks (finality wait)

    [[shock]]                          # price-path shocks (backtest.shocks), applied in order to
    kind = "shift"                     # the oracle answers of each feed; "assets" name feeds
    pct = -0.3                         # (proxy addresses), never one that oracle model reference
                                       # or republish replaces. Counterfactual mode only.
    at_ts = 1610000000

    [metrics]
    names = ["bad_debt", "liquidations"]   # default: backtest.metrics.DEFAULT
    [metrics.bad_debt]
    dust_usd = 1

    [checks]                           # judged by `deficit check` (backtest.checks.Checks)

Every key is checked: an unknown key, a wrong type or a bad value raises :class:`ScenarioError`
naming the file, the line and the field, and what was expected. Whether the warehouse has the
data is checked later, before the replay starts (:func:`backtest.api.load_inputs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from .errors import ScenarioError

__all__ = ["Scenario", "Window", "Market", "OracleModelSpec", "ReferenceSpec", "LiquidatorSpec",
           "ReserveOverride", "Overrides", "Finality", "MetricsSpec", "load_scenario", "parse_scenario",
           "shock_error", "currencies", "money_keys"]

_ADDR = re.compile(r"^0x[0-9a-f]{40}$")


@dataclass(frozen=True)
class Window:
    """Blocks ``[from_block, to_block]``; or ISO UTC times resolved through raw.blocks (then the
    block fields are None until resolved)."""

    from_block: int | None = None
    to_block: int | None = None
    from_time: dt.datetime | None = None
    to_time: dt.datetime | None = None


@dataclass(frozen=True)
class Market:
    """``asset_decimals``: token decimals declared by the scenario for a protocol whose events do
    not carry them (Aave v2: ``ReserveInitialized`` has no decimals and the tokens' initializers
    emit nothing); passed to ``adapter.new_state(asset_decimals=...)``. The values are the
    ERC-20 ``decimals()`` of each underlying (e.g. from the token's verified source or an
    ``eth_call``): a wrong value would misprice the reserve, so they are the scenario author's
    declaration, never guessed."""

    protocol: str
    source: str
    dataset: str
    rules: str | None = None
    asset_decimals: Mapping[str, int] | None = None
    #: aToken treasury (``RESERVE_TREASURY_ADDRESS``) per asset, for the same reason (Aave v2)
    asset_treasuries: Mapping[str, str] | None = None


@dataclass(frozen=True)
class OracleModelSpec:
    model: Literal["protocol", "reference", "republish"] = "protocol"
    delay_s: int = 0
    delay_blocks: int = 0
    min_answer: int | None = None
    max_answer: int | None = None
    deviation_bps: int | None = None
    heartbeat_s: int | None = None


@dataclass(frozen=True)
class ReferenceSpec:
    """``pairs``: feed (proxy address) → reference pair; the feed's price keys then also get a
    reference price. ``source``: restrict to one ``raw.reference_prices.source``. ``max_gap_s``:
    the longest a reference price may be held in the window before the next one (a hole in the
    path is refused beyond it); None: 10 times the series' median interval
    (``backtest.api.DEFAULT_GAP_FACTOR``). ``at_par``: quote currencies (upper case) the user takes
    as the market's base currency at 1:1, e.g. ``("USDT",)`` for a Binance ETH/USDT path on a USD
    market; a pair quoted in a stablecoin not named here is refused (``backtest.api``)."""

    pairs: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None
    max_gap_s: int | None = None
    at_par: tuple[str, ...] = ()


@dataclass(frozen=True)
class Slippage:
    """Constant-product depth (``depth``: the pool's value on the asset side) or a table of
    ``(size, bps)`` points (linear between points, flat beyond the last); whole units of the
    market's base currency (``depth_usd`` / ``depth_eth`` in the scenario)."""

    depth: Decimal | None = None
    table: tuple[tuple[Decimal, int], ...] = ()


@dataclass(frozen=True)
class LiquidatorSpec:
    """``min_profit``: whole units of the market's base currency (``min_profit_usd`` for Aave v3,
    ``min_profit_eth`` for Aave v2 in the scenario). ``prices``: what the liquidator values its
    trade at, ``"oracle"`` (the protocol's prices) or ``"reference"`` (the ``[reference]`` path's
    where it has one, the oracle's elsewhere; :mod:`backtest.liquidator`)."""

    reaction_delay_blocks: int = 0
    gas_units: int = 0
    priority_fee_wei: int = 0
    gas_price_key: str | None = None
    min_profit: Decimal = Decimal(0)
    capacity_per_block: int = 0
    flash_loans: bool = True
    flash_fee_bps: int = 0
    slippage: Mapping[str, Slippage] = field(default_factory=dict)
    inventory: Mapping[str, int] = field(default_factory=dict)
    repeat_in_block: bool = True
    prices: Literal["oracle", "reference"] = "oracle"


@dataclass(frozen=True)
class ReserveOverride:
    asset: str
    ltv_bps: int | None = None
    liquidation_threshold_bps: int | None = None
    liquidation_bonus_bps: int | None = None
    liquidation_protocol_fee_bps: int | None = None
    supply_cap: int | None = None
    borrow_cap: int | None = None


@dataclass(frozen=True)
class EModeOverride:
    """An e-mode category's liquidation parameters (Aave v3 ``DataTypes.EModeCategory``, bps): what
    its accounts are liquidated by instead of their reserves' own."""

    category: int
    liquidation_threshold_bps: int | None = None
    liquidation_bonus_bps: int | None = None


@dataclass(frozen=True)
class Overrides:
    close_factor_bps: int | None = None
    reserves: tuple[ReserveOverride, ...] = ()
    emode: tuple[EModeOverride, ...] = ()

    @property
    def empty(self) -> bool:
        return self.close_factor_bps is None and not self.reserves and not self.emode


@dataclass(frozen=True)
class Finality:
    depth_blocks: int = 64
    wait_blocks: int = 0


@dataclass(frozen=True)
class MetricsSpec:
    names: tuple[str, ...] = ()
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """A parsed, validated scenario (see the module docstring)."""

    name: str
    chain_id: int
    mode: Literal["historical", "counterfactual"]
    window: Window
    market: Market
    oracle: OracleModelSpec = OracleModelSpec()
    reference: ReferenceSpec | None = None
    liquidator: LiquidatorSpec = LiquidatorSpec()
    overrides: Overrides = Overrides()
    finality: Finality = Finality()
    shocks: tuple[Mapping[str, Any], ...] = ()
    metrics: MetricsSpec = MetricsSpec()
    seed: int = 0
    warehouse: str | None = None
    origin: str = "<scenario>"
    text: str = ""
    #: ``[checks]`` thresholds (:class:`backtest.checks.Checks`, None without one); they judge a
    #: run's results and do not change them, so they are not part of :meth:`canonical_json`
    checks: Any = None

    @property
    def from_block(self) -> int:
        if self.window.from_block is None:
            raise ValueError("window not resolved to blocks")
        return self.window.from_block

    @property
    def to_block(self) -> int:
        if self.window.to_block is None:
            raise ValueError("window not resolved to blocks")
        return self.window.to_block

    def canonical_json(self) -> str:
        """The scenario's content as canonical JSON (sorted keys; origin, text, checks and the
        warehouse path excluded): what ``bt.runs.scenario_sha256`` hashes."""
        d = _plain(self)
        assert isinstance(d, dict)
        d.pop("origin")
        d.pop("text")
        d.pop("checks")
        # where the data is read from, not what: --db overrides it, and what the run read is its
        # data_sources; null as when absent, so that scenarios without one keep their hash
        d["warehouse"] = None
        ov = d["overrides"]
        assert isinstance(ov, dict)
        # at most one override per reserve and per category (refused at load): their order in the
        # file means nothing
        ov["reserves"] = sorted(ov["reserves"], key=lambda r: str(r["asset"]))
        ov["emode"] = sorted(ov["emode"], key=lambda r: int(r["category"]))
        if not ov["emode"]:  # added later: left out when empty, so earlier scenarios keep their hash
            del ov["emode"]
        ref = d["reference"]
        if isinstance(ref, dict) and ref.get("max_gap_s") is None:  # added later, as emode
            ref.pop("max_gap_s", None)
        if isinstance(ref, dict) and not ref.get("at_par"):  # added later too
            ref.pop("at_par", None)
        lq = d["liquidator"]
        if isinstance(lq, dict) and lq.get("prices") == "oracle":  # added later: the default left out
            lq.pop("prices")
        return json.dumps(_whole_floats(d), sort_keys=True, default=_json_default, separators=(",", ":"))

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def error(self, field_path: str, message: str) -> ScenarioError:
        """A :class:`ScenarioError` located at ``field_path`` (dotted, e.g. ``oracle.delay_s``)."""
        return ScenarioError(self.origin, message, _line_of(self.text, field_path), field_path)


def _plain(o: object) -> object:
    """Dataclasses, mappings and sequences as plain dicts and lists (no deep copy)."""
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f.name: _plain(getattr(o, f.name)) for f in dataclasses.fields(o)}
    if isinstance(o, Mapping):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    return o


def _whole_floats(o: object) -> object:
    """``o`` with every whole float (``1.0``, from a TOML ``1.0``) as an int: the code reading a
    parameter takes ``1`` and ``1.0`` as one number, so the hash does too."""
    if isinstance(o, float) and o.is_integer() and abs(o) < 2**53:
        return int(o)
    if isinstance(o, dict):
        return {k: _whole_floats(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_whole_floats(v) for v in o]
    return o


def _json_default(o: object) -> object:
    if isinstance(o, Decimal):  # one amount, one text: 10, 10.0, "10.00" and 1e1 are "10"
        text = format(o.normalize(), "f")
        return "0" if text in ("-0", "0") else text
    if isinstance(o, dt.datetime):
        return o.isoformat()
    if isinstance(o, Mapping):
        return dict(o)
    raise TypeError(type(o).__name__)


# ------------------------------------------------------------------ line numbers

def _code(line: str) -> str:
    """``line`` without its trailing ``# comment`` (a ``#`` inside a quoted string is kept), stripped:
    a table header followed by a comment (``[checks]   # judged by ...``) is still a header."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i].strip()
    return line.strip()


def _line_of(text: str, path: str) -> int | None:
    """1-based line of a dotted field path (``oracle.delay_s``, ``overrides.reserve[1].asset``,
    ``metrics.bad_debt.dust_usd``) in TOML text: the ``key =`` line inside the table, else the
    table header, else None."""
    if not text:
        return None
    parts = [p for p in re.split(r"\.(?![^\[]*\])", path) if p]
    key = parts[-1] if parts else ""
    index = 0
    m = re.match(r"^(.*)\[(\d+)\]$", key)
    if m:
        key, index = m.group(1), int(m.group(2))
    lines = text.splitlines()
    header: list[str] = []
    counts: dict[str, int] = {}
    want_table = ".".join(re.sub(r"\[\d+\]$", "", p) for p in parts[:-1])
    want_index = 0
    if parts[:-1]:
        mi = re.match(r"^.*\[(\d+)\]$", parts[-2])
        if mi:
            want_index = int(mi.group(1))
    best: int | None = None
    for i, ln in enumerate(lines):
        s = _code(ln)
        h = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?$", s)
        if h:
            name = h.group(1).replace('"', "")
            header = [name]
            counts[name] = counts.get(name, -1) + 1
            if name == f"{want_table}.{key}".strip(".") or (name == key and not want_table):
                if counts[name] == index or not m:
                    best = best or i + 1
            continue
        cur = header[0] if header else ""
        k = re.match(r'^\s*"?([^"=\s]+)"?\s*=', ln)
        if k and k.group(1) == key and cur == want_table and counts.get(cur, 0) == want_index:
            return i + 1
    if best:
        return best
    for i, ln in enumerate(lines):
        h = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?$", _code(ln))
        if h and want_table and h.group(1).replace('"', "") == want_table:
            return i + 1
    for i, ln in enumerate(lines):  # a table given only through its sub-tables ([[overrides.reserve]])
        h = re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?$", _code(ln))
        if h and not m and h.group(1).replace('"', "").startswith(f"{path}."):
            return i + 1
    if len(parts) > 1:  # a key of an inline table ("0x.." = { depth_usd = 0 }): the line of its table
        return _line_of(text, ".".join(parts[:-1]))
    return None


# ------------------------------------------------------------------ parsing

class _P:
    """Typed accessors that raise :class:`ScenarioError` at the field's line."""

    def __init__(self, origin: str, text: str):
        self.origin, self.text = origin, text
        #: the market's base currency, lower case (``usd``, ``eth``): the suffix of money keys;
        #: set once ``[market]`` is parsed
        self.currency = "usd"
        self.protocol = ""

    def money(self, d: Mapping[str, Any], stem: str, path: str, default: Decimal | None) -> Decimal | None:
        """The amount ``<stem>_<currency>`` of ``d`` (``path``: the table's dotted path), in whole
        base currency. The same stem with another currency's suffix is refused, naming the key to
        write: an Aave v2 market's values are in ETH, so its ``min_profit_usd`` would silently
        mean ETH."""
        own = f"{stem}_{self.currency}"
        for k in money_keys(stem):
            if k != own and k in d:
                raise self.err(f"{path}.{k}", f"{k} is in {k.rsplit('_', 1)[1].upper()}, but this "
                               f"{self.protocol} market's values are in {self.currency.upper()} (its "
                               f"oracle's base currency); write {own} (in {self.currency.upper()})")
        return self.dec(d, own, f"{path}.{own}", default)

    def err(self, path: str, msg: str) -> ScenarioError:
        return ScenarioError(self.origin, msg, _line_of(self.text, path), path)

    def table(self, doc: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...] | None,
              required: bool = False) -> Mapping[str, Any]:
        v = doc.get(key)
        if v is None:
            if required:
                raise self.err(path, f"missing required table [{path}]")
            return {}
        if not isinstance(v, dict):
            raise self.err(path, f"expected a table, got {type(v).__name__}")
        if allowed is not None:
            extra = sorted(set(v) - set(allowed))
            if extra:
                raise self.err(f"{path}.{extra[0]}", f"unknown key {extra[0]!r}; allowed: {list(allowed)}")
        return v

    def int_(self, d: Mapping[str, Any], key: str, path: str, default: int | None = None, *,
             minimum: int | None = 0, required: bool = False) -> int | None:
        if key not in d:
            if required:
                raise self.err(path, "missing required field")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.err(f"{path}", f"expected an integer, got {v!r}")
        if minimum is not None and v < minimum:
            raise self.err(path, f"expected an integer >= {minimum}, got {v}")
        return v

    def str_(self, d: Mapping[str, Any], key: str, path: str, default: str | None = None, *,
             required: bool = False, choices: tuple[str, ...] | None = None) -> str | None:
        if key not in d:
            if required:
                raise self.err(path, "missing required field")
            return default
        v = d[key]
        if not isinstance(v, str):
            raise self.err(path, f"expected a string, got {v!r}")
        if choices is not None and v not in choices:
            raise self.err(path, f"expected one of {list(choices)}, got {v!r}")
        return v

    def bool_(self, d: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        if key not in d:
            return default
        v = d[key]
        if not isinstance(v, bool):
            raise self.err(path, f"expected true or false, got {v!r}")
        return v

    def dec(self, d: Mapping[str, Any], key: str, path: str, default: Decimal | None) -> Decimal | None:
        if key not in d:
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise self.err(path, f"expected a number, got {v!r}")
        try:
            out = Decimal(str(v))
        except InvalidOperation:
            raise self.err(path, f"expected a number, got {v!r}") from None
        if not out.is_finite() or out < 0:
            raise self.err(path, f"expected a finite number >= 0, got {v!r}")
        return out

    def addr(self, v: object, path: str) -> str:
        if not isinstance(v, str) or not _ADDR.match(v.lower()):
            raise self.err(path, f"expected a 0x address (40 hex digits), got {v!r}")
        return v.lower()

    def addr_keys(self, t: Mapping[str, Any], path: str) -> None:
        """Check the keys of the address-keyed table ``t`` (at ``path``): addresses, each once. Two
        TOML keys differing in case only (a checksummed and a lower-case copy) are one address,
        and read into one mapping the later silently replaced the earlier."""
        seen: dict[str, str] = {}
        for k in t:
            a = self.addr(k, f"{path}.{k}")
            if a in seen:
                raise self.err(f"{path}.{k}", f"{a} is given twice, as {seen[a]!r} and {k!r} (addresses "
                               "are not case-sensitive): give it once")
            seen[a] = k


_TOP = ("name", "chain_id", "mode", "seed", "warehouse", "window", "market", "oracle", "reference",
        "liquidator", "overrides", "finality", "shock", "metrics", "checks")


def parse_scenario(text: str, origin: str = "<scenario>") -> Scenario:
    """Parse and validate scenario TOML ``text`` (``origin`` names it in errors)."""
    p = _P(origin, text)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise ScenarioError(origin, f"not valid TOML: {e}", int(m.group(1)) if m else None) from None
    extra = sorted(set(doc) - set(_TOP))
    if extra:
        raise p.err(extra[0], f"unknown key {extra[0]!r}; allowed: {list(_TOP)}")
    name = p.str_(doc, "name", "name", required=True)
    chain_id = p.int_(doc, "chain_id", "chain_id", required=True, minimum=1)
    mode = p.str_(doc, "mode", "mode", "historical", choices=("historical", "counterfactual"))
    warehouse = p.str_(doc, "warehouse", "warehouse")

    w = p.table(doc, "window", "window", ("from_block", "to_block", "from", "to"), required=True)
    window = Window(p.int_(w, "from_block", "window.from_block"), p.int_(w, "to_block", "window.to_block"),
                    _time(p, w, "from"), _time(p, w, "to"))
    if (window.from_block is None) == (window.from_time is None):
        raise p.err("window.from_block", "give exactly one of from_block or from (ISO UTC time)")
    if (window.to_block is None) == (window.to_time is None):
        raise p.err("window.to_block", "give exactly one of to_block or to (ISO UTC time)")
    if window.from_block is not None and window.to_block is not None and window.to_block < window.from_block:
        raise p.err("window.to_block", f"to_block {window.to_block} is before from_block {window.from_block}")

    mk = p.table(doc, "market", "market", ("protocol", "source", "dataset", "rules", "asset_decimals",
                                                 "asset_treasuries"),
                 required=True)
    protocol = p.str_(mk, "protocol", "market.protocol", required=True)
    from protocols.registry import ADAPTERS

    if protocol not in ADAPTERS:
        raise p.err("market.protocol", f"unknown protocol {protocol!r}; registered: {sorted(ADAPTERS)}")
    from protocols.registry import adapter_class

    p.currency, p.protocol = adapter_class(str(protocol)).base_currency.lower(), str(protocol)
    asset_decimals = None
    if "asset_decimals" in mk:
        dt_ = p.table(mk, "asset_decimals", "market.asset_decimals", None)
        p.addr_keys(dt_, "market.asset_decimals")
        asset_decimals = MappingProxyType(dict(sorted(
            (p.addr(k, f"market.asset_decimals.{k}"),
             int(p.int_(dt_, k, f"market.asset_decimals.{k}", required=True, minimum=0) or 0))
            for k in dt_)))
    asset_treasuries = None
    if "asset_treasuries" in mk:
        tt = p.table(mk, "asset_treasuries", "market.asset_treasuries", None)
        p.addr_keys(tt, "market.asset_treasuries")
        asset_treasuries = MappingProxyType(dict(sorted(
            (p.addr(k, f"market.asset_treasuries.{k}"),
             p.addr(p.str_(tt, k, f"market.asset_treasuries.{k}", required=True),
                    f"market.asset_treasuries.{k}")) for k in tt)))
    rules = p.str_(mk, "rules", "market.rules")
    if rules is not None:
        import inspect

        if "rules" not in inspect.signature(adapter_class(str(protocol)).new_state).parameters:
            raise p.err("market.rules", f"{protocol} has one rule set: rules names the Pool's version of an "
                        "aave_v3 market; remove it")
    market = Market(str(protocol), str(p.str_(mk, "source", "market.source", required=True)),
                    str(p.str_(mk, "dataset", "market.dataset", protocol)), rules, asset_decimals,
                    asset_treasuries)

    o = p.table(doc, "oracle", "oracle", ("model", "delay_s", "delay_blocks", "min_answer", "max_answer",
                                          "deviation_bps", "heartbeat_s"))
    oracle = OracleModelSpec(
        p.str_(o, "model", "oracle.model", "protocol", choices=("protocol", "reference", "republish")),  # type: ignore[arg-type]
        p.int_(o, "delay_s", "oracle.delay_s", 0) or 0,
        p.int_(o, "delay_blocks", "oracle.delay_blocks", 0) or 0,
        p.int_(o, "min_answer", "oracle.min_answer", minimum=None),
        p.int_(o, "max_answer", "oracle.max_answer", minimum=None),
        p.int_(o, "deviation_bps", "oracle.deviation_bps"), p.int_(o, "heartbeat_s", "oracle.heartbeat_s"))
    lo, hi = oracle.min_answer, oracle.max_answer
    if lo is not None and hi is not None and lo > hi:
        raise p.err("oracle.min_answer", f"min_answer {lo} is above max_answer {hi}: every answer would "
                    "be rejected")
    if oracle.model != "republish" and (oracle.deviation_bps is not None or oracle.heartbeat_s is not None):
        raise p.err("oracle.deviation_bps" if oracle.deviation_bps is not None else "oracle.heartbeat_s",
                    "deviation_bps / heartbeat_s apply to model 'republish' only")

    reference = None
    if "reference" in doc:
        r = p.table(doc, "reference", "reference", ("pairs", "source", "max_gap_s", "at_par"))
        pairs_t = p.table(r, "pairs", "reference.pairs", None, required=True)
        p.addr_keys(pairs_t, "reference.pairs")
        pairs = {}
        for k in pairs_t:
            pairs[p.addr(k, f"reference.pairs.{k}")] = str(p.str_(pairs_t, k, f"reference.pairs.{k}"))
        at_par = r.get("at_par", [])
        if not isinstance(at_par, list) or not all(isinstance(q, str) and q.strip() for q in at_par):
            raise p.err("reference.at_par", f"expected a list of quote currencies, e.g. [\"USDT\"], got "
                        f"{at_par!r}")
        reference = ReferenceSpec(MappingProxyType(dict(sorted(pairs.items()))),
                                  p.str_(r, "source", "reference.source"),
                                  p.int_(r, "max_gap_s", "reference.max_gap_s", minimum=1),
                                  tuple(sorted({q.strip().upper() for q in at_par})))
    if oracle.model in ("reference", "republish") and reference is None:
        raise p.err("oracle.model", f"model {oracle.model!r} needs a [reference] table with pairs")

    liquidator = _liquidator(p, doc)
    if liquidator.prices == "reference" and reference is None:
        raise p.err("liquidator.prices", "prices = \"reference\" values the liquidator's trade at the "
                    "reference path, and this scenario has none: add a [reference] table with pairs "
                    "(feed address = pair, e.g. \"ETH/USD\"), or set prices = \"oracle\"")
    overrides = _overrides(p, doc)
    if not overrides.empty and mode != "counterfactual":
        raise p.err("overrides", "overrides apply in counterfactual mode only "
                    "(set mode = \"counterfactual\")")

    f = p.table(doc, "finality", "finality", ("depth_blocks", "wait_blocks"))
    finality = Finality(p.int_(f, "depth_blocks", "finality.depth_blocks", 64) or 0,
                        p.int_(f, "wait_blocks", "finality.wait_blocks", 0) or 0)

    shocks_raw = doc.get("shock", [])
    if not isinstance(shocks_raw, list) or not all(isinstance(s, dict) for s in shocks_raw):
        raise p.err("shock", "expected an array of tables [[shock]]")
    from .shocks import ShockError, parse_shock

    for i, s in enumerate(shocks_raw):
        try:
            parse_shock(s, f"shock[{i}]")
        except ShockError as e:
            raise p.err(e.field, str(e).split(": ", 1)[-1]) from None
    if shocks_raw and mode != "counterfactual":
        raise p.err("shock", "shocks apply in counterfactual mode only")
    seed = p.int_(doc, "seed", "seed", 0, minimum=None) or 0

    mt = p.table(doc, "metrics", "metrics", None)
    names_raw = mt.get("names")
    from .metrics import DEFAULT, METRICS

    if names_raw is None:
        names = DEFAULT
    else:
        if not isinstance(names_raw, list) or not all(isinstance(n, str) for n in names_raw):
            raise p.err("metrics.names", f"expected a list of metric names, got {names_raw!r}")
        names = tuple(names_raw)
    for i, n in enumerate(names):
        if n not in METRICS:
            raise p.err("metrics.names", f"unknown metric {n!r}; registered: {sorted(METRICS)}")
        if n in names[:i]:  # computed twice: each of its figures twice in bt.summaries
            raise p.err("metrics.names", f"metric {n!r} is listed twice; list it once")
    if reference is None:
        from .metrics import get_metric

        needy = [n for n in names if get_metric(n).requires_reference]
        if needy:
            raise p.err("metrics.names", f"metric(s) {needy} need a reference price path: a [reference] "
                        "table with pairs is needed (feed address = pair, e.g. \"ETH/USD\"); import the "
                        "path with `deficit import-prices`")
    params: dict[str, Mapping[str, Any]] = {}
    for k, v in mt.items():
        if k == "names":
            continue
        if k not in METRICS:
            raise p.err(f"metrics.{k}", f"unknown metric {k!r}; registered: {sorted(METRICS)}")
        if not isinstance(v, dict):
            raise p.err(f"metrics.{k}", "expected a table of parameters")
        if k not in names:  # parameters nobody reads: a typo in names, or a metric dropped from it
            raise p.err(f"metrics.{k}", f"parameters for metric {k!r}, which this scenario does not "
                        f"compute (metrics.names: {list(names)}); add it to names or remove the table")
        for key in v:  # a money parameter must be in the market's currency (dust_usd vs dust_eth)
            stem, _, cur = key.rpartition("_")
            if stem and cur in currencies():
                p.money(v, stem, f"metrics.{k}", None)
        params[k] = MappingProxyType(dict(v))
    from .metrics import MetricError, get_metric

    for n in names:  # the metrics' own parameter checks, now rather than when the replay starts
        try:
            get_metric(n)(params.get(n))
        except MetricError as e:
            raise p.err(f"metrics.{n}" if n in params else "metrics.names", str(e)) from None
    checks = None
    if "checks" in doc:  # validated by backtest.checks (issue 5), same error type and lines
        from .checks import parse_checks

        checks = parse_checks(p, doc["checks"], names, str(mode))
    return Scenario(str(name), int(chain_id or 0), mode,  # type: ignore[arg-type]
                    window, market, oracle, reference, liquidator, overrides, finality,
                    tuple(MappingProxyType(dict(s)) for s in shocks_raw), MetricsSpec(names, params),
                    seed=seed, warehouse=warehouse, origin=origin, text=text, checks=checks)


def _time(p: _P, w: Mapping[str, Any], key: str) -> dt.datetime | None:
    if key not in w:
        return None
    v = w[key]
    if isinstance(v, dt.datetime):
        t = v
    elif isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise p.err(f"window.{key}", f"expected an ISO-8601 UTC time like 2021-01-11T00:00:00Z, "
                        f"got {v!r}") from None
    else:
        raise p.err(f"window.{key}", f"expected an ISO-8601 UTC time, got {v!r}")
    if t.tzinfo is None:
        # a date alone ('2021-01-11', even '2021-01-11Z') parses without one too
        raise p.err(f"window.{key}", f"{v!r} is not a time of day with a UTC offset: write it like "
                    "2021-01-11T00:00:00Z (Z for UTC)")
    return t.astimezone(dt.UTC)


@cache
def currencies() -> tuple[str, ...]:
    """The base currencies of the registered adapters, lower case: the suffixes of money keys
    (the registry is fixed at import, so once per process)."""
    from protocols.registry import ADAPTERS, adapter_class

    return tuple(sorted({adapter_class(a).base_currency.lower() for a in ADAPTERS} | {"usd"}))


def money_keys(stem: str) -> tuple[str, ...]:
    """``stem`` with each base currency's suffix (``dust_eth``, ``dust_usd``)."""
    return tuple(f"{stem}_{c}" for c in currencies())


def _liquidator(p: _P, doc: Mapping[str, Any]) -> LiquidatorSpec:
    lq = p.table(doc, "liquidator", "liquidator", (
        "reaction_delay_blocks", "gas_units", "priority_fee_wei", "gas_price_key", *money_keys("min_profit"),
        "capacity_per_block", "flash_loans", "flash_fee_bps", "slippage", "inventory", "repeat_in_block",
        "prices"))
    slip: dict[str, Slippage] = {}
    depth_key = f"depth_{p.currency}"
    p.addr_keys(p.table(lq, "slippage", "liquidator.slippage", None), "liquidator.slippage")
    for k, v in p.table(lq, "slippage", "liquidator.slippage", None).items():
        path = f"liquidator.slippage.{k}"
        asset = p.addr(k, path)
        if not isinstance(v, dict):
            raise p.err(path, f"expected a table with {depth_key} or table")
        depth = p.money(v, "depth", path, None)
        extra = sorted(set(v) - {depth_key, "table"})
        if extra or len(v) != 1:
            raise p.err(path, f"expected exactly one of {depth_key} (constant product) or table "
                        f"([[size_{p.currency}, bps], ...])")
        if depth_key in v:
            if not depth:
                raise p.err(f"{path}.{depth_key}", "expected a depth > 0")
            slip[asset] = Slippage(depth=depth)
        else:
            pts = v["table"]
            if not isinstance(pts, list) or not pts or not all(
                    isinstance(x, list) and len(x) == 2 and isinstance(x[1], int)
                    and not isinstance(x[1], bool) and 0 <= x[1] <= 10_000 for x in pts):
                # above 10,000 bps the sale would lose more than it sells (a percent typed as bps...)
                raise p.err(f"{path}.table",
                            f"expected [[size_{p.currency}, bps], ...] with integer bps >= 0 and <= 10000")
            table = tuple((p.dec({"size": a}, "size", f"{path}.table", None) or Decimal(0), int(b))
                          for a, b in pts)
            if any(a0 >= a1 for (a0, _), (a1, _) in zip(table, table[1:], strict=False)):
                raise p.err(f"{path}.table", "sizes must increase")
            slip[asset] = Slippage(table=table)
    inv: dict[str, int] = {}
    p.addr_keys(p.table(lq, "inventory", "liquidator.inventory", None), "liquidator.inventory")
    for k in p.table(lq, "inventory", "liquidator.inventory", None):
        path = f"liquidator.inventory.{k}"
        inv[p.addr(k, path)] = int(p.int_(lq["inventory"], k, path) or 0)
    gas_key = p.str_(lq, "gas_price_key", "liquidator.gas_price_key")
    if gas_key is None and (p.int_(lq, "gas_units", "liquidator.gas_units", 0) or 0) > 0:
        raise p.err("liquidator.gas_units", "gas_units > 0 needs gas_price_key: the price key of ETH "
                    "(e.g. WETH's address), at whose oracle price gas is valued")
    flash = p.bool_(lq, "flash_loans", "liquidator.flash_loans", True)
    # each of these is read under one setting of flash_loans only: given under the other, it was ignored
    if flash and "inventory" in lq:
        raise p.err("liquidator.inventory", "inventory applies only with flash_loans = false (the bot "
                    "repays from it); with flash loans it borrows what it repays")
    fee = p.int_(lq, "flash_fee_bps", "liquidator.flash_fee_bps", 0) or 0
    if not flash and fee > 0:
        raise p.err("liquidator.flash_fee_bps", "flash_fee_bps applies only with flash_loans = true")
    if fee > 10_000:  # Aave's configurator refuses a premium above 100 % (FLASHLOAN_PREMIUM_INVALID)
        raise p.err("liquidator.flash_fee_bps", f"expected 0..10000 bps, got {fee}: the fee is in basis "
                    "points of the repaid debt (5 = 0.05 %)")
    if not flash and not any(v > 0 for v in inv.values()):
        raise p.err("liquidator.flash_loans", "flash_loans = false needs [liquidator.inventory]: the "
                    "debt-asset base units the bot repays from; with none it can never liquidate")
    return LiquidatorSpec(
        p.int_(lq, "reaction_delay_blocks", "liquidator.reaction_delay_blocks", 0) or 0,
        p.int_(lq, "gas_units", "liquidator.gas_units", 0) or 0,
        p.int_(lq, "priority_fee_wei", "liquidator.priority_fee_wei", 0) or 0,
        p.addr(gas_key, "liquidator.gas_price_key") if gas_key is not None else None,
        p.money(lq, "min_profit", "liquidator", Decimal(0)) or Decimal(0),
        p.int_(lq, "capacity_per_block", "liquidator.capacity_per_block", 0) or 0,
        flash,
        p.int_(lq, "flash_fee_bps", "liquidator.flash_fee_bps", 0) or 0,
        MappingProxyType(dict(sorted(slip.items()))), MappingProxyType(dict(sorted(inv.items()))),
        p.bool_(lq, "repeat_in_block", "liquidator.repeat_in_block", True),
        p.str_(lq, "prices", "liquidator.prices", "oracle", choices=("oracle", "reference")))  # type: ignore[arg-type]


_RESERVE_KEYS = ("asset", "ltv_bps", "liquidation_threshold_bps", "liquidation_bonus_bps",
                 "liquidation_protocol_fee_bps", "supply_cap", "borrow_cap")


def _overrides(p: _P, doc: Mapping[str, Any]) -> Overrides:
    ov = p.table(doc, "overrides", "overrides", ("close_factor_bps", "reserve", "emode"))
    cf = p.int_(ov, "close_factor_bps", "overrides.close_factor_bps")
    if cf is not None and not 0 < cf <= 10_000:
        raise p.err("overrides.close_factor_bps", f"expected 1..10000, got {cf}")
    raw = ov.get("reserve", [])
    if not isinstance(raw, list):
        raise p.err("overrides.reserve", "expected an array of tables [[overrides.reserve]]")
    out: list[ReserveOverride] = []
    for i, r in enumerate(raw):
        path = f"overrides.reserve[{i}]"
        if not isinstance(r, dict):
            raise p.err(path, "expected a table")
        extra = sorted(set(r) - set(_RESERVE_KEYS))
        if extra:
            raise p.err(f"{path}.{extra[0]}", f"unknown key {extra[0]!r}; allowed: {list(_RESERVE_KEYS)}")
        if "asset" not in r:
            raise p.err(f"{path}.asset", "missing required field 'asset'")
        vals = {k: p.int_(r, k, f"{path}.{k}") for k in _RESERVE_KEYS[1:]}
        for k in ("ltv_bps", "liquidation_threshold_bps", "liquidation_protocol_fee_bps"):
            if vals[k] is not None and int(vals[k] or 0) > 10_000:
                raise p.err(f"{path}.{k}", f"expected 0..10000 bps, got {vals[k]}")
        for k in ("ltv_bps", "supply_cap", "borrow_cap"):
            if vals[k] is not None:
                raise p.err(f"{path}.{k}", f"{k} has no effect in counterfactual mode (the only mode with "
                            "overrides): user actions are frozen, and LTV and caps bound only new borrows "
                            "and supplies; a liquidation reads neither. Remove it")
        if vals["liquidation_protocol_fee_bps"] is not None:
            from protocols.registry import adapter_class

            if not adapter_class(p.protocol).has_liquidation_protocol_fee:
                raise p.err(f"{path}.liquidation_protocol_fee_bps", f"{p.protocol} liquidations pay no "
                            "liquidation protocol fee: there is nothing to override")
        bonus = vals["liquidation_bonus_bps"]
        if bonus is not None and bonus < 10_000:  # the premium alone (500) would seize 5 % of the debt
            raise p.err(f"{path}.liquidation_bonus_bps", f"expected >= 10000, got {bonus}: Aave's "
                        "liquidation bonus is 10000 + the premium in bps (10500 = a 5 % bonus)")
        asset = p.addr(r["asset"], f"{path}.asset")
        seen = [j for j, o in enumerate(out) if o.asset == asset]
        if seen:  # applied in turn, the later entry's fields would silently replace the earlier's
            raise p.err(f"{path}.asset", f"{asset} is already overridden by overrides.reserve[{seen[0]}]: "
                        "give each reserve one entry")
        out.append(ReserveOverride(asset, **vals))
    return Overrides(cf, tuple(out), _emode_overrides(p, ov))


_EMODE_KEYS = ("category", "liquidation_threshold_bps", "liquidation_bonus_bps")


def _emode_overrides(p: _P, ov: Mapping[str, Any]) -> tuple[EModeOverride, ...]:
    raw = ov.get("emode", [])
    if not isinstance(raw, list):
        raise p.err("overrides.emode", "expected an array of tables [[overrides.emode]]")
    if raw:
        from protocols.registry import adapter_class

        if not adapter_class(p.protocol).has_emode_categories:
            raise p.err("overrides.emode", f"{p.protocol} markets have no e-mode categories")
    out: list[EModeOverride] = []
    for i, r in enumerate(raw):
        path = f"overrides.emode[{i}]"
        if not isinstance(r, dict):
            raise p.err(path, "expected a table")
        if "ltv_bps" in r:
            raise p.err(f"{path}.ltv_bps", "ltv_bps has no effect in counterfactual mode (the only mode with "
                        "overrides): user actions are frozen, and LTV bounds only new borrows. Remove it")
        extra = sorted(set(r) - set(_EMODE_KEYS))
        if extra:
            raise p.err(f"{path}.{extra[0]}", f"unknown key {extra[0]!r}; allowed: {list(_EMODE_KEYS)}")
        cat = p.int_(r, "category", f"{path}.category")
        if cat is None:
            raise p.err(f"{path}.category", "missing required field 'category' (the e-mode category id)")
        if not 1 <= cat <= 255:  # uint8; 0 is "no e-mode", which has no parameters of its own
            raise p.err(f"{path}.category", f"expected an e-mode category id 1..255, got {cat}")
        lt = p.int_(r, "liquidation_threshold_bps", f"{path}.liquidation_threshold_bps")
        bonus = p.int_(r, "liquidation_bonus_bps", f"{path}.liquidation_bonus_bps")
        if lt is None and bonus is None:
            raise p.err(path, "nothing to override: give liquidation_threshold_bps and/or "
                        "liquidation_bonus_bps")
        if lt is not None and not 0 <= lt <= 10_000:
            raise p.err(f"{path}.liquidation_threshold_bps", f"expected 0..10000 bps, got {lt}")
        if bonus is not None and bonus < 10_000:
            raise p.err(f"{path}.liquidation_bonus_bps", f"expected >= 10000, got {bonus}: Aave's "
                        "liquidation bonus is 10000 + the premium in bps (10100 = a 1 % bonus)")
        seen = [j for j, o in enumerate(out) if o.category == cat]
        if seen:
            raise p.err(f"{path}.category", f"e-mode category {cat} is already overridden by "
                        f"overrides.emode[{seen[0]}]: give each category one entry")
        out.append(EModeOverride(cat, lt, bonus))
    return tuple(out)


def shock_error(sc: Scenario, e: Exception) -> ScenarioError:
    """A :class:`backtest.shocks.ShockError` raised when the shocks meet the window's price paths
    (a shock's ``assets`` naming a feed with no rounds there, ...) as a :class:`ScenarioError` at the
    scenario's ``[[shock]]`` entry: ``field`` is ``shock[i].x``, or ``<kind>.x`` when only one shock
    has that kind."""
    field = str(getattr(e, "field", "shock"))
    msg = str(e)
    if msg.startswith(f"{field}: "):
        msg = msg[len(field) + 2:]
    if not field.startswith("shock["):
        kind, _, rest = field.partition(".")
        idx = [i for i, s in enumerate(sc.shocks) if s.get("kind") == kind]
        field = f"shock[{idx[0]}].{rest}" if len(idx) == 1 and rest else "shock"
    if field.endswith((".assets", ".betas")):
        msg += " (shock assets name oracle feeds by their proxy address, as in raw.oracle_rounds.feed)"
    return sc.error(field, msg)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ScenarioError(str(path), f"cannot read: {e.strerror}") from None
    try:  # TOML is UTF-8 whatever the locale's encoding
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ScenarioError(str(path), f"not UTF-8 text (TOML files are UTF-8): byte 0x{data[e.start]:02x} "
                            "cannot be decoded; save the file as UTF-8", line) from None
    sc = parse_scenario(text, str(path))
    if sc.warehouse and sc.warehouse != ":memory:" and not Path(sc.warehouse).is_absolute():
        # relative to the scenario's folder, as [checks] baseline is: not to wherever it is run from
        sc = dataclasses.replace(sc, warehouse=str(path.parent / sc.warehouse))
    return sc
