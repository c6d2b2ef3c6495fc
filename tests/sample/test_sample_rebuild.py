"""``deficit sample build --seed 1`` is reproducible: a fresh build equals the committed file.

Every ``raw.*`` table, and the sample's population and bot decisions, must hold exactly the same
rows (``EXCEPT ALL`` both ways, so duplicates count). Nothing is excluded: the ingest run id is
derived from the seed, block hashes and timestamps are fixed by the genesis time and the 12 s
cadence. ``meta.sample`` differs only in its wall-clock ``build.*`` keys and ``code_version``
(the commit that built it).
"""

from __future__ import annotations

import duckdb
import pytest

from ingest.sample import SAMPLE_DB
from tests.sample.conftest import FreshSample

pytestmark = [pytest.mark.anvil,
              pytest.mark.skipif(not SAMPLE_DB.exists(), reason="data/sample.duckdb not built")]


def test_rebuild_from_the_same_seed_is_identical(fresh_sample: FreshSample) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{SAMPLE_DB}' AS committed (READ_ONLY)")
    con.execute(f"ATTACH '{fresh_sample.path}' AS fresh (READ_ONLY)")

    def tables(db: str) -> set[str]:
        return {f"{s}.{t}" for s, t in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? AND "
            "(schema_name = 'raw' OR table_name LIKE 'sample%')", [db]).fetchall()}

    assert tables("committed") == tables("fresh")
    compared = 0
    for t in sorted(tables("committed")):
        keep = "" if t != "meta.sample" else \
            " WHERE key NOT LIKE 'build.%' AND key NOT IN ('code_version')"
        n = con.execute(f"SELECT count(*) FROM committed.{t}{keep}").fetchone()[0]
        assert n == con.execute(f"SELECT count(*) FROM fresh.{t}{keep}").fetchone()[0], t
        for a, b in (("committed", "fresh"), ("fresh", "committed")):
            diff = con.execute(f"SELECT * FROM {a}.{t}{keep} EXCEPT ALL SELECT * FROM {b}.{t}{keep} "
                               "LIMIT 3").fetchall()
            assert not diff, f"{t}: rows in {a} but not in {b}: {diff}"
        compared += n
    blocks = con.execute("SELECT count(*) FROM committed.raw.blocks").fetchone()[0]
    assert blocks > 7_000 and compared > 2 * blocks  # not a vacuous comparison
    assert {"raw.blocks", "raw.logs", "raw.oracle_rounds", "raw.aave_v3_liquidation_call",
            "raw.reference_prices", "meta.sample_bot_decisions"} <= tables("committed")
