"""Deployments are data: protocol markets and price feeds, from presets or a user TOML file.

A deployments file (the presets in ``ingest/presets/*.toml`` use the same format)::

    [meta]
    chain = "ethereum"
    chain_id = 1

    [[deployment]]
    name = "aave_v3_ethereum"      # unique; becomes the ``source`` of every row it yields
    protocol = "aave_v3"           # a dataset name: aave_v3 | aave_v2
    chain_id = 1
    start_block = 16291127
    [deployment.contracts]         # role -> address (roles: see the dataset module)
    pool = "0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2"

    [[feed]]                       # a Chainlink-style feed (an EACAggregatorProxy)
    name = "ETH / USD"
    chain_id = 1
    proxy = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
    decimals = 8
    start_block = 10606501
    deviation_bps = 50             # the feed's published deviation threshold (off-chain setting)
    heartbeat_s = 3600             # the feed's published heartbeat (seconds)

Errors name the file, the line of the offending entry and the field.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, DeploymentsFileError

__all__ = ["Deployment", "Feed", "DeploymentSet", "load_deployments", "load_preset",
           "PRESETS_DIR", "preset_names"]

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
_ADDR = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _checksum_ok(addr: str) -> bool:
    """EIP-55: an all-lower or all-upper hex address carries no checksum; a mixed-case one must
    match it (a typo in a copied checksummed address names another contract)."""
    digits = addr[2:]
    if digits == digits.lower() or digits == digits.upper():
        return True
    from eth_hash.auto import keccak

    h = keccak(digits.lower().encode()).hex()
    return all(c.isdigit() or (c.isupper() == (int(h[i], 16) >= 8)) for i, c in enumerate(digits))


@dataclass(frozen=True)
class Deployment:
    """One protocol market: addresses by role, where ingestion of it starts."""

    name: str
    protocol: str
    chain_id: int
    start_block: int
    contracts: dict[str, str]
    origin: str = ""

    def address(self, role: str) -> str | None:
        a = self.contracts.get(role)
        return a.lower() if a else None


@dataclass(frozen=True)
class Feed:
    """A Chainlink-style price feed proxy and its published update rules."""

    name: str
    chain_id: int
    proxy: str
    decimals: int | None
    start_block: int
    deviation_bps: int | None = None
    heartbeat_s: int | None = None
    min_answer: int | None = None
    max_answer: int | None = None
    aggregators: tuple[tuple[int, str], ...] = ()
    origin: str = ""


@dataclass
class DeploymentSet:
    chain_id: int | None = None
    deployments: list[Deployment] = field(default_factory=list)
    feeds: list[Feed] = field(default_factory=list)

    def extend(self, other: DeploymentSet) -> None:
        if other.chain_id is not None:
            if self.chain_id is not None and self.chain_id != other.chain_id:
                raise ConfigError(f"deployments for chain {other.chain_id} mixed with chain "
                                  f"{self.chain_id}")
            self.chain_id = other.chain_id
        names = {d.name for d in self.deployments} | {f.name for f in self.feeds}
        for d in other.deployments:
            if d.name in names:
                raise ConfigError(f"deployment {d.name!r} declared twice ({d.origin})")
            names.add(d.name)
            self.deployments.append(d)
        for f in other.feeds:
            if f.name in names:
                raise ConfigError(f"feed {f.name!r} declared twice ({f.origin})")
            names.add(f.name)
            self.feeds.append(f)


def _line_of(text: str, table: str, index: int, key: str | None) -> int | None:
    """Line (1-based) of ``key`` inside the ``index``-th ``[[table]]`` entry, for messages."""
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]\s*(#.*)?$")
    starts = [i for i, ln in enumerate(lines) if header.match(ln)]
    if index >= len(starts):
        return None
    start = starts[index]
    end = starts[index + 1] if index + 1 < len(starts) else len(lines)
    if key:
        leaf = key.split(".")[-1]
        for i in range(start, end):
            if re.match(rf"^\s*{re.escape(leaf)}\s*=", lines[i]):
                return i + 1
    return start + 1


def _meta_line(text: str, key: str | None) -> int | None:
    """Line (1-based) of ``key`` in the ``[meta]`` table (its header line for None)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == "[meta]"), None)
    if start is None:
        return None
    if key is None:
        return start + 1
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if re.match(rf"^\s*{re.escape(key)}\s*=", lines[i]):
            return i + 1
    return start + 1


def load_deployments(path: str | Path, label: str | None = None) -> DeploymentSet:
    """Parse and validate a deployments TOML file. ``label``: what the deployments' ``origin``
    says (stored with the data, e.g. ``raw.oracle_feeds.declared_in``); default the path as
    given. Errors always name the path."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DeploymentsFileError(str(path), f"cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DeploymentsFileError(str(path), f"not UTF-8 text (TOML files are UTF-8): byte "
                                   f"0x{data[e.start]:02x} cannot be decoded; save the file as UTF-8",
                                   data[:e.start].count(b"\n") + 1) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        raise DeploymentsFileError(str(path), f"invalid TOML: {e}",
                                   int(m.group(1)) if m else None) from None
    out = _from_doc(doc, text, str(path))
    if label is None:
        return out
    return DeploymentSet(out.chain_id, [dataclasses.replace(d, origin=label) for d in out.deployments],
                         [dataclasses.replace(f, origin=label) for f in out.feeds])


def _from_doc(doc: dict, text: str, origin: str) -> DeploymentSet:
    out = DeploymentSet()
    meta = doc.get("meta", {})
    unknown_top = set(doc) - {"meta", "deployment", "feed"}
    if unknown_top:
        raise DeploymentsFileError(origin, f"unknown top-level key(s) {sorted(unknown_top)}; "
                                   "expected [meta], [[deployment]], [[feed]]")
    if not isinstance(meta, dict):
        raise DeploymentsFileError(origin, "[meta] must be a table", _meta_line(text, None), "meta")
    for key in sorted(set(meta) - {"chain", "chain_id", "finality"}):
        # a typo of chain_id would leave the file without a chain, and its entries unchecked
        raise DeploymentsFileError(origin, f"unknown key {key!r} in [meta]; expected chain, "
                                   "chain_id", _meta_line(text, key), f"meta.{key}")
    if "finality" in meta and meta["finality"] != "finalized":
        raise DeploymentsFileError(origin, "a deployments file does not set the watermark (it is "
                                   "not read): pass --head or --confirmations N to `deficit "
                                   "ingest`", _meta_line(text, "finality"), "meta.finality")
    if "chain" in meta and (not isinstance(meta["chain"], str) or not meta["chain"].strip()):
        raise DeploymentsFileError(origin, "expected a chain name", _meta_line(text, "chain"),
                                   "meta.chain")
    if "chain_id" in meta:
        v = meta["chain_id"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise DeploymentsFileError(origin, f"expected a non-negative integer, got {v!r}",
                                       _meta_line(text, "chain_id"), "meta.chain_id")
        out.chain_id = v

    def err(table: str, i: int, key: str, msg: str) -> DeploymentsFileError:
        return DeploymentsFileError(origin, msg, _line_of(text, table, i, key), f"{table}[{i}].{key}")

    from .datasets import DATASETS

    for i, d in enumerate(doc.get("deployment", [])):
        for req in ("name", "protocol", "chain_id", "start_block", "contracts"):
            if req not in d:
                raise err("deployment", i, req, f"missing required field {req!r}")
        extra = set(d) - {"name", "protocol", "chain_id", "start_block", "contracts"}
        if extra:
            raise err("deployment", i, sorted(extra)[0], f"unknown field(s) {sorted(extra)}")
        proto = d["protocol"]
        if proto not in DATASETS or proto in ("blocks", "chainlink"):
            raise err("deployment", i, "protocol",
                      f"unknown protocol {proto!r}; expected one of "
                      f"{sorted(k for k in DATASETS if k not in ('blocks', 'chainlink'))}")
        roles = DATASETS[proto].ROLES
        contracts = d["contracts"]
        if not isinstance(contracts, dict):
            raise err("deployment", i, "contracts", "expected a table of role = address")
        for role, addr in contracts.items():
            if role not in roles:
                raise err("deployment", i, f"contracts.{role}",
                          f"unknown role {role!r} for {proto}; expected one of {sorted(roles)}")
            if not isinstance(addr, str) or not _ADDR.match(addr):
                raise err("deployment", i, f"contracts.{role}",
                          f"expected a 0x-prefixed 20-byte hex address, got {addr!r}")
            if not _checksum_ok(addr):
                raise err("deployment", i, f"contracts.{role}",
                          f"{addr} fails its EIP-55 checksum (mixed case): a typo? write it as "
                          "published, or all lower case to skip the check")
        missing = [r for r, required in roles.items() if required and r not in contracts]
        if missing:
            raise err("deployment", i, "contracts", f"missing required role(s) {missing}")
        seen: dict[str, str] = {}
        for role, addr in contracts.items():
            # one contract in two roles: its logs would be staged under both, and an event both
            # roles declare (the same signature) decoded and applied twice
            other = seen.setdefault(str(addr).lower(), role)
            if other != role:
                raise err("deployment", i, f"contracts.{role}",
                          f"{addr} is also contracts.{other}: each role is a different contract")
        out.deployments.append(Deployment(
            name=_str(d["name"], err("deployment", i, "name", "expected a non-empty string")),
            protocol=proto,
            chain_id=_int(d["chain_id"], origin, i, "chain_id", text, "deployment", i),
            start_block=_int(d["start_block"], origin, i, "start_block", text, "deployment", i),
            contracts={k: v.lower() for k, v in contracts.items()}, origin=origin))
    for i, f in enumerate(doc.get("feed", [])):
        for req in ("name", "chain_id", "proxy", "start_block"):
            if req not in f:
                raise err("feed", i, req, f"missing required field {req!r}")
        allowed = {"name", "chain_id", "proxy", "decimals", "start_block", "deviation_bps",
                   "heartbeat_s", "aggregators", "min_answer", "max_answer", "asset"}
        extra = set(f) - allowed
        if extra:
            raise err("feed", i, sorted(extra)[0], f"unknown field(s) {sorted(extra)}")
        if not isinstance(f["proxy"], str) or not _ADDR.match(f["proxy"]):
            raise err("feed", i, "proxy", f"expected a 20-byte hex address, got {f['proxy']!r}")
        if not _checksum_ok(f["proxy"]):
            raise err("feed", i, "proxy", f"{f['proxy']} fails its EIP-55 checksum (mixed case): "
                      "a typo? write it as published, or all lower case to skip the check")
        aggs: list[tuple[int, str]] = []
        for j, a in enumerate(f.get("aggregators", [])):
            if (not isinstance(a, dict) or not isinstance(a.get("address"), str)
                    or not _ADDR.match(a["address"]) or not isinstance(a.get("phase"), int)):
                raise err("feed", i, "aggregators",
                          f"aggregators[{j}]: expected {{phase = N, address = \"0x...\"}}")
            if not _checksum_ok(a["address"]):
                raise err("feed", i, "aggregators", f"aggregators[{j}]: {a['address']} fails its "
                          "EIP-55 checksum (mixed case): a typo? write it as published, or all "
                          "lower case to skip the check")
            if isinstance(a["phase"], bool) or a["phase"] < 1:
                raise err("feed", i, "aggregators",
                          f"aggregators[{j}]: phase must be 1, 2, ... (got {a['phase']!r})")
            if any(p == a["phase"] for p, _ in aggs):
                raise err("feed", i, "aggregators",
                          f"aggregators[{j}]: phase {a['phase']} is declared twice")
            aggs.append((int(a["phase"]), a["address"].lower()))

        def opt(key: str, i: int = i, f: dict = f) -> int | None:
            return _int(f[key], origin, i, key, text, "feed", i) if key in f else None

        out.feeds.append(Feed(
            name=_str(f["name"], err("feed", i, "name", "expected a non-empty string")),
            chain_id=_int(f["chain_id"], origin, i, "chain_id", text, "feed", i),
            proxy=f["proxy"].lower(), decimals=opt("decimals"),
            start_block=_int(f["start_block"], origin, i, "start_block", text, "feed", i),
            deviation_bps=opt("deviation_bps"), heartbeat_s=opt("heartbeat_s"),
            min_answer=opt("min_answer"), max_answer=opt("max_answer"),
            aggregators=tuple(aggs), origin=origin))
    seen: set[str] = set()
    entries: list[tuple[str, int, str, int]] = (
        [("deployment", i, d.name, d.chain_id) for i, d in enumerate(out.deployments)]
        + [("feed", i, f.name, f.chain_id) for i, f in enumerate(out.feeds)])
    for table, i, name, chain_id in entries:
        if out.chain_id is not None and chain_id != out.chain_id:
            raise err(table, i, "chain_id", f"{table} {name!r} has chain_id {chain_id} "
                      f"but [meta] says {out.chain_id}")
        if name in seen:  # one name, one source key: two markets' rows would mix
            raise err(table, i, "name", f"name {name!r} is declared twice in this file")
        seen.add(name)
    return out


def _str(v: object, e: Exception) -> str:
    if not isinstance(v, str) or not v.strip():
        raise e
    return v


def _int(v: object, origin: str, i: int | None, key: str, text: str, table: str,
         idx: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise DeploymentsFileError(origin, f"expected a non-negative integer, got {v!r}",
                                   _line_of(text, table, idx, key) if i is not None else None,
                                   f"{table}[{idx}].{key}" if i is not None else key)
    return v


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_preset(name: str) -> DeploymentSet:
    p = PRESETS_DIR / f"{name}.toml"
    if not p.exists():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(preset_names())}")
    return load_deployments(p, label=f"preset {name}")  # not the install path: the same everywhere
