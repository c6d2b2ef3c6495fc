"""Table declarations: each table is declared once, next to the code that fills it.

A :class:`Table` carries its columns, their DuckDB types and their documentation; the DDL
(``CREATE TABLE``) and the schema reference (``deficit schema``, ``docs/schema.md``) are both
generated from it, so the docs cannot drift from the warehouse.

Column-name suffixes carry units: ``_ts`` unix seconds, ``_raw`` token base units, ``_wad``/``_ray``/
``_bps`` fixed point, ``_f64`` a derived float for analysis only (never a source of truth).

uint256 policy: exact integers only. Every event integer wider than 64 bits (uint72..uint256,
int72..int256) is a ``UHUGEINT`` (signed: ``HUGEINT``) column, and the decoder *raises*
:class:`~ingest.errors.ValueOutOfRange` (block, log index, field) on a value that does not fit
128 bits; no event column holds such a value as text or as a float.

Reading them back: ``fetchall()`` gives exact Python ints. DuckDB (2.0) hands ``UHUGEINT`` and
``HUGEINT`` to Arrow and polars (``.pl()``, ``.to_arrow_table()``) as ``decimal128(38, 0)``, where
a ``UHUGEINT`` of 2**127 or more comes out negative (2**128 - 1 reads -1); cast such a column to
``VARCHAR`` (exact decimal text) or split it into 64-bit halves in SQL first, as
``backtest.feed.fetch_columns`` does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Column", "Table", "LINEAGE_LOG_COLUMNS", "register_table", "registered_tables",
           "schema_markdown", "schema_text", "asked_sha256", "asked_doc", "canonical_asked",
           "addresses_sha256", "sha256_hex"]


@dataclass(frozen=True)
class Column:
    """One column: name, DuckDB type, documentation (units and meaning)."""

    name: str
    type: str
    doc: str
    nullable: bool = True
    compression: str | None = None  # storage hint, e.g. "zstd" for long unique hex text


@dataclass(frozen=True)
class Table:
    """A warehouse table, declared once; ``filled_by`` names the module that writes it."""

    schema: str
    name: str
    doc: str
    columns: tuple[Column, ...]
    filled_by: str
    sort_key: tuple[str, ...] = ()
    kind: str = "table"  # "table" or "view"
    view_sql: str = ""

    @property
    def fqn(self) -> str:
        return f"{self.schema}.{self.name}"

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ddl(self) -> str:
        if self.kind == "view":
            return f"CREATE OR REPLACE VIEW {self.fqn} AS {self.view_sql}"
        cols = ",\n  ".join(
            f'"{c.name}" {c.type}'
            f'{f" USING COMPRESSION {c.compression}" if c.compression else ""}'
            f'{"" if c.nullable else " NOT NULL"}' for c in self.columns)
        return f"CREATE TABLE IF NOT EXISTS {self.fqn} (\n  {cols}\n)"

    def comment_sql(self) -> list[str]:
        """``COMMENT ON`` statements so the docs are also visible inside DuckDB."""
        q = sql_str
        out = [f"COMMENT ON {'VIEW' if self.kind == 'view' else 'TABLE'} {self.fqn} IS {q(self.doc)}"]
        if self.kind == "table":
            out += [f'COMMENT ON COLUMN {self.fqn}."{c.name}" IS {q(c.doc)}' for c in self.columns]
        return out


def sql_str(s: str) -> str:
    """``s`` as a SQL string literal (quotes doubled)."""
    return "'" + s.replace("'", "''") + "'"


LINEAGE_LOG_COLUMNS: tuple[Column, ...] = (
    Column("chain_id", "UBIGINT", "EIP-155 chain id of the chain the log was read from", False),
    Column("block_number", "UBIGINT", "block height of the log", False),
    Column("block_hash", "VARCHAR", "hash of the block that contained the log (0x-hex)", False),
    Column("tx_hash", "VARCHAR", "hash of the emitting transaction (0x-hex)", False),
    Column("tx_index", "UINTEGER", "index of the transaction in its block", False),
    Column("log_index", "UINTEGER", "index of the log in its block", False),
    Column("address", "VARCHAR", "emitting contract, lower-case 0x-hex", False),
)


def asked_sha256(dataset: str, topics: Mapping[str, Sequence[str]], tables: Iterable[Table]) -> str:
    """The fingerprint of what an ingest of ``dataset`` asks for and writes, recorded with every
    interval it covers (``meta.checkpoints.asked_sha256``): SHA-256 (hex) of the canonical JSON of
    :data:`ingest.version.INGEST_FORMAT`, the dataset, each role's sorted ``eth_getLogs`` topic0s
    (``topics``: role -> topic0s) and each written table's columns (names and types, by table).
    An interval stored under another fingerprint lacks what this version would fetch there (a
    newly declared event or role, a new table or column) or holds rows of another ingest format:
    the planner re-ingests it, the backtest refuses it until then."""
    return sha256_hex(asked_doc(dataset, topics, tables))


def asked_doc(dataset: str, topics: Mapping[str, Sequence[str]], tables: Iterable[Table]) -> str:
    """The canonical JSON text :func:`asked_sha256` hashes (kept in ``meta.asked_sets``, so a
    later version can tell what an interval stored under that fingerprint asked for)."""
    from .version import INGEST_FORMAT

    return canonical_asked({
        "ingest_format": INGEST_FORMAT, "dataset": dataset,
        "topics": {r: sorted(str(t).lower() for t in ts) for r, ts in topics.items()},
        "tables": {t.fqn: [[c.name, c.type] for c in t.columns] for t in tables}})


def canonical_asked(doc: Mapping[str, object]) -> str:
    """The canonical JSON text of a parsed :func:`asked_doc` (sorted keys, no spaces)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def addresses_sha256(addresses: Mapping[str, Sequence[str]]) -> str:
    """The fingerprint of the contract addresses an ingest of one dataset source was *given* (a
    deployment's declared contracts, by role; not those it discovers from logs, e.g. tokens or
    feed phase aggregators), recorded with each covered interval
    (``meta.checkpoints.addresses_sha256``): SHA-256 (hex) of the canonical JSON of role -> sorted
    lower-case addresses. A role given another address (or a new role) since an interval was
    stored makes that interval stale: the new contract's logs were never asked for there."""
    doc = {r: sorted(str(a).lower() for a in v) for r, v in addresses.items() if v}
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


_REGISTRY: dict[str, Table] = {}


def register_table(table: Table) -> Table:
    """Add a table to the warehouse registry; a second, different declaration is an error."""
    prev = _REGISTRY.get(table.fqn)
    if prev is not None and prev != table:
        raise ValueError(f"table {table.fqn} declared twice with different definitions")
    _REGISTRY[table.fqn] = table
    return table


def registered_tables() -> list[Table]:
    """All declared tables, importing every ingest module that declares some (sorted by name).

    Packages layered on ingest (the backtest's ``bt`` tables) register theirs when imported;
    the ``deficit`` command imports them first (``backtest.cli``), so its schema lists them."""
    from . import datasets as _datasets  # noqa: F401  (declares dataset tables)
    from . import prices as _prices  # noqa: F401
    from . import sample_tables as _sample_tables  # noqa: F401  (meta.sample*, the bundled sample)
    from . import warehouse as _warehouse  # noqa: F401

    _datasets.all_event_tables()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def schema_markdown(tables: Iterable[Table] | None = None) -> str:
    """The schema reference as Markdown (written to ``docs/schema.md``)."""
    tables = list(tables if tables is not None else registered_tables())
    lines = ["# Warehouse schema", "",
             "Generated from the table declarations by `deficit schema --markdown`; "
             "a test keeps this file in sync. Do not edit by hand.", ""]
    by_schema: dict[str, list[Table]] = {}
    for t in tables:
        by_schema.setdefault(t.schema, []).append(t)
    for schema in sorted(by_schema):
        lines += [f"## Schema `{schema}`", ""]
        for t in by_schema[schema]:
            lines += [f"### `{t.fqn}`{' (view)' if t.kind == 'view' else ''}", "", t.doc, "",
                      f"Filled by `{t.filled_by}`."
                      + (f" Sorted by {', '.join(t.sort_key)}." if t.sort_key else ""), ""]
            lines += ["| column | type | description |", "|---|---|---|"]
            for c in t.columns:
                doc = c.doc.replace("|", "\\|")
                lines.append(f"| `{c.name}` | {c.type}{'' if c.nullable else ' NOT NULL'} | {doc} |")
            lines.append("")
    return "\n".join(lines)


def schema_text(tables: Iterable[Table] | None = None) -> str:
    """A compact plain-text listing for the terminal."""
    tables = list(tables if tables is not None else registered_tables())
    out: list[str] = []
    for t in tables:
        out.append(f"{t.fqn}  — {t.doc}")
        width = max((len(c.name) for c in t.columns), default=0)
        for c in t.columns:
            out.append(f"    {c.name:<{width}}  {c.type:<10} {c.doc}")
        out.append("")
    return "\n".join(out)
