"""Build a real anvil chain that emits every declared event, and remember what was emitted.

Each Aave role (pool, configurator, oracle, provider, aToken, debt tokens) is a generated emitter
contract with the exact mainnet event declarations; the Chainlink feeds are the ported test
aggregators behind a phased proxy (Flux-style phase 1, OCR phase 2) and an OCR2 feed. The
expected decoded values come from the arguments we sent, so tests compare the warehouse with
what the chain really emitted, exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from eth_hash.auto import keccak

from ingest.abi import EventSpec
from ingest.datasets import LOG_DATASETS
from ingest.datasets.aave import TOKEN_ROLES
from ingest.demo import emitter_name, random_args
from ingest.devchain import Contract, DevChain


@dataclass
class Emitted:
    table: str
    tx_hash: str
    address: str
    values: dict[str, Any]


@dataclass
class MarketChain:
    deployments_toml: str
    emitted: list[Emitted] = field(default_factory=list)
    feeds: dict[str, Contract] = field(default_factory=dict)  # name -> proxy
    aggregators: dict[str, list[Contract]] = field(default_factory=dict)
    contracts: dict[tuple[str, str], list[Contract]] = field(default_factory=dict)


def expected_value(p_type: str, indexed: bool, v: Any) -> Any:
    if indexed and (p_type in ("string", "bytes") or p_type.endswith("[]")):
        raw = v.encode() if isinstance(v, str) else bytes(v)
        return "0x" + keccak(raw).hex()
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, str) and v.startswith("0x"):
        return v.lower()
    if isinstance(v, list):
        return [expected_value(p_type[:-2], False, x) for x in v]
    return v


def _event_tables(dataset: str, role: str) -> dict[str, tuple[str, EventSpec]]:
    ds = LOG_DATASETS[dataset]
    return {t.spec.name + "/" + str(len(t.spec.params)): (t.table.fqn, t.spec)
            for t in ds.EVENT_TABLES if role in t.roles}


def emit_all(chain: DevChain, dataset: str, role: str, c: Contract, rng: random.Random,
             times: int, out: MarketChain) -> None:
    tables = _event_tables(dataset, role)
    txs, metas = [], []
    for entry in c.abi:
        if entry.get("type") != "function" or not entry["name"].startswith("emit"):
            continue
        ev_name = entry["name"][4:].rstrip("0123456789")
        key = f"{ev_name}/{len(entry['inputs'])}"
        if key not in tables:
            raise AssertionError(f"{c.name}.{entry['name']} has no table for role {role}")
        fqn, spec = tables[key]
        for _ in range(times):
            args = random_args(entry, rng)
            if spec.name == "ReserveInitialized":  # keep discovery pointing at no-op addresses
                args = tuple(args)
            txs.append((c, entry["name"], args))
            metas.append((fqn, spec, args))
    hashes = chain.send_many(txs)
    for h, (fqn, spec, args) in zip(hashes, metas, strict=True):
        vals = {spec.column_name(p): expected_value(p.type, p.indexed, a)
                for p, a in zip(spec.params, args, strict=True)}
        out.emitted.append(Emitted(fqn, h, c.address, vals))


def build_market_chain(chain: DevChain, *, seed: int = 1, times: int = 2,
                       datasets: tuple[str, ...] = ("aave_v3", "aave_v2"),
                       rounds: int = 12) -> MarketChain:
    rng = random.Random(seed)
    chain_id = int(chain.rpc("eth_chainId"), 16)
    out = MarketChain("")
    lines = ["[meta]", f"chain_id = {chain_id}", ""]
    for ds in datasets:
        cls = LOG_DATASETS[ds]
        root_roles = [r for r in cls.ROLES if r not in TOKEN_ROLES]
        roots = {r: chain.deploy(emitter_name(ds, r)) for r in root_roles}
        configurator = roots[cls.CONFIGURATOR_ROLE]
        toks: dict[str, list[Contract]] = {r: [] for r in TOKEN_ROLES}
        for _reserve in range(2):
            t = {r: chain.deploy(emitter_name(ds, r)) for r in TOKEN_ROLES}
            for r in TOKEN_ROLES:
                toks[r].append(t[r])
            args = ("0x" + rng.randbytes(20).hex(), t["a_token"].address,
                    t["stable_debt_token"].address, t["variable_debt_token"].address,
                    "0x" + rng.randbytes(20).hex())
            h = chain.send(configurator, "emitReserveInitialized", *args)
            spec = next(t.spec for t in cls.EVENT_TABLES if t.spec.name == "ReserveInitialized")
            fqn = next(t.table.fqn for t in cls.EVENT_TABLES if t.spec.name == "ReserveInitialized")
            out.emitted.append(Emitted(fqn, h, configurator.address, {
                spec.column_name(p): expected_value(p.type, p.indexed, a)
                for p, a in zip(spec.params, args, strict=True)}))
        for r, c in roots.items():
            emit_all(chain, ds, r, c, rng, times, out)
            out.contracts[(ds, r)] = [c]
        for r, cs in toks.items():
            for c in cs:
                emit_all(chain, ds, r, c, rng, times, out)
            out.contracts[(ds, r)] = cs
        lines += ["[[deployment]]", f'name = "{ds}_test"', f'protocol = "{ds}"',
                  f"chain_id = {chain_id}", "start_block = 0", "[deployment.contracts]"]
        lines += [f'{r} = "{c.address}"' for r, c in roots.items()] + [""]
    # Chainlink: ETH / USD with two phases, USDC / USD on OCR2
    owner = chain.default_sender
    flux = chain.deploy("TestFluxAggregator", 3600, 1, 10**14, 8, "ETH / USD")
    chain.send(flux, "changeOracles", [], [owner], [owner], 1, 1, 0)
    proxy = chain.deploy("TestAggregatorProxy", flux.address)
    ocr = chain.deploy("TestOCRAggregator", 1, 10**14, 8, "ETH / USD")
    price = 1200 * 10**8
    txs = []
    for i in range(rounds):
        price += rng.randint(-5 * 10**8, 5 * 10**8)
        txs.append((flux, "submit", (i + 1, price)))
    chain.send_many(txs)
    chain.mine(3)
    chain.send(proxy, "proposeAggregator", ocr.address)
    chain.send(proxy, "confirmAggregator", ocr.address)
    txs = []
    for _ in range(rounds):
        price += rng.randint(-5 * 10**8, 5 * 10**8)
        obs = sorted(price + rng.randint(-10**7, 10**7) for _ in range(4)) + [price]
        txs.append((ocr, "transmit", (sorted(obs),)))
    chain.send_many(txs)
    usdc = chain.deploy("TestOCR2Aggregator", 1, 10**10, 8, "USDC / USD")
    usdc_proxy = chain.deploy("TestAggregatorProxy", usdc.address)
    chain.send_many([(usdc, "transmit", ([10**8 - i, 10**8, 10**8 + i],)) for i in range(rounds)])
    out.feeds = {"ETH / USD": proxy, "USDC / USD": usdc_proxy}
    out.aggregators = {"ETH / USD": [flux, ocr], "USDC / USD": [usdc]}
    for name, p in out.feeds.items():
        lines += ["[[feed]]", f'name = "{name}"', f"chain_id = {chain_id}",
                  f'proxy = "{p.address}"', "decimals = 8", "start_block = 0", ""]
    out.deployments_toml = "\n".join(lines)
    return out
