"""Where the shared real-data fixtures are: ``../shared/data/real`` beside the checkout (as in CI
and the workplace), else the workplace path. Tests that need them skip, with the reason, when
neither exists (e.g. a clone elsewhere)."""

from __future__ import annotations

from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = (_REPO.parent / "shared" / "data" / "real", Path("/work/shared/data/real"))
REAL_DATA = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])
