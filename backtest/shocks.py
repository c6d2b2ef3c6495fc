"""Price-path shocks: pure, seeded transformations of per-asset price paths.

A **path** is a tuple of ``(ts, price)`` observations sorted by ``ts`` (unix seconds), prices as
exact positive integers in the feed's units (e.g. USD with 8 decimals). A set of paths is a
mapping ``key -> path`` where the key is whatever the caller uses for the asset or feed (an
asset address, a feed proxy). :func:`apply_shocks` applies a sequence of shocks in order and
returns new paths; nothing here reads files, the clock or global randomness.

Shocks (each a frozen dataclass with a ``kind``; bad parameters raise :class:`ShockError`
naming the field):

* ``scale`` (:class:`Scale`): multiply prices by ``factor`` on ``[from_ts, to_ts]``;
* ``shift`` (:class:`Shift`): add ``amount`` (price units) or move by ``pct`` (``-0.3`` is a
  30 % fall) from ``at_ts`` on, optionally ramped in linearly over ``ramp_s`` seconds;
* ``stretch`` (:class:`Stretch`): map each timestamp ``ts`` to ``anchor + (ts - anchor) *
  factor`` (``factor > 1`` slows the path down, ``< 1`` compresses it; prices unchanged);
* ``correlated`` (:class:`Correlated`): one percentage move ``pct`` applied to several assets,
  each with its own ``beta`` (asset move = ``pct * beta``), same time and ramp;
* ``resample`` (:class:`Resample`): insert last-observation-carried-forward points on a
  regular grid (so a later ramp or stretch acts between sparse observations; a replay publishes
  only those a later shock moved, see ``apply_shocks(keep_resampled=False)``);
* ``student_t`` (:class:`StudentT`): replace ``(from_ts, to_ts]`` by a seeded Monte Carlo path
  on a ``step_s`` grid with Student-t log returns (``df``; ``None``, in TOML ``"normal"`` =
  Gaussian, i.e. GBM),
  annualised ``vol`` and ``drift``, correlated across assets by a ``correlation`` matrix
  (multivariate t: one shared chi-square draw per step, so the correlation of the returns is the
  matrix itself);
* ``bootstrap`` (:class:`Bootstrap`): the same, with returns drawn by a circular block
  bootstrap (``block_len`` steps) from the assets' own history resampled on the grid, up to
  ``from_ts`` (never after it: that is the future the path replaces); the same block starts are
  used for every asset, which keeps their cross-correlation and fat tails.

A path is a step function: each observation is the price in force until the next. ``scale``,
``shift`` and ``correlated`` act on the price in force from their own instants, not only on the
observations after them: where the path has no observation at ``from_ts`` / ``to_ts + 1`` (scale)
or at the ramp's end ``at_ts + ramp_s`` (shift, correlated; ``at_ts`` without a ramp) they add
one there carrying the price in force, moved (none before the first observation, none that would
change nothing). Between observations a ramp is thus a step at its end; resample first for a
finer one.

Monte Carlo shocks start from the price in force at ``from_ts`` (last observation at or before
it, else the first observation); observations after ``to_ts`` are kept, rescaled by the ratio
of the simulated end price to the original price in force at ``to_ts`` so the path continues from
the shocked level.

Exactness and rounding: deterministic shocks compute in exact rationals (:class:`fractions.Fraction`;
a float parameter is read through its shortest decimal ``repr``, so ``0.7`` means ``7/10``) and
round **half to even** (Python's ``round``) to an integer price; Monte Carlo paths compute log
returns in binary floating point and round the float price half to even. Timestamps are rounded
half to even too. **Floor**: no shock ever produces a price below :data:`MIN_PRICE` (= 1 unit):
a result below it is raised to it, because a zero or negative answer is not a price (Aave's oracle
rejects answers <= 0). **Ceiling**: a result above :data:`MAX_PRICE` (int256 max: no Chainlink
answer is larger) is refused with :class:`ShockError` naming the shock (``shock[i]``, its position
in the list). Input paths must be sorted with positive prices; otherwise
:class:`ShockError` names the path and the observation.

Reproducibility: each stochastic shock draws from its own :class:`random.Random`, seeded from
``sha256("deficit-shock:{seed}:{position}")``, so a run is reproducible bit for bit on the same
Python build (Mersenne Twister is specified; ``gauss``/``gammavariate`` use the platform's libm
``log``/``sqrt``/``cos``, which IEEE 754 platforms agree on in practice), and adding a shock does
not change the draws of the shocks before it.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import ClassVar, TypeAlias

__all__ = [
    "MIN_PRICE", "MAX_PRICE", "SECONDS_PER_YEAR", "Observation", "Path", "Paths", "ShockError", "Shock",
    "Scale",
    "Shift", "Stretch", "Correlated", "Resample", "StudentT", "Bootstrap", "SHOCK_KINDS",
    "apply_shocks", "parse_shock", "shock_rng", "cholesky", "student_t_vectors",
]

#: smallest price a shock may produce (one unit of the feed's integer answer)
MIN_PRICE = 1
#: largest: a Chainlink answer is an int256 (``AnswerUpdated(int256 current, ...)``)
MAX_PRICE = 2**255 - 1
#: the year used to annualise ``vol`` and ``drift`` (365 days, as Aave's SECONDS_PER_YEAR)
SECONDS_PER_YEAR = 365 * 24 * 3600

Observation: TypeAlias = tuple[int, int]
Path: TypeAlias = tuple[Observation, ...]
Paths: TypeAlias = Mapping[str, Path]


class ShockError(ValueError):
    """A shock parameter or an input path is invalid; ``field`` names it (``scale.factor``,
    ``paths[0xabc][3]``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _frac(kind: str, name: str, v: object) -> Fraction:
    if isinstance(v, bool) or not isinstance(v, int | float | str | Fraction):
        raise ShockError(f"{kind}.{name}", f"expected a number, got {v!r}")
    try:
        if isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError
            return Fraction(repr(v))
        return Fraction(v)
    except (ValueError, ZeroDivisionError):
        raise ShockError(f"{kind}.{name}", f"expected a finite number, got {v!r}") from None


def _int(kind: str, name: str, v: object, *, minimum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ShockError(f"{kind}.{name}", f"expected an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise ShockError(f"{kind}.{name}", f"must be >= {minimum}, got {v}")
    return v


def _opt_int(kind: str, name: str, v: object) -> int | None:
    return None if v is None else _int(kind, name, v)


def _float(kind: str, name: str, v: object) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | Fraction):
        raise ShockError(f"{kind}.{name}", f"expected a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ShockError(f"{kind}.{name}", f"expected a finite number, got {v!r}")
    return f


def _assets(kind: str, v: object, *, required: bool = False) -> tuple[str, ...]:
    if isinstance(v, str) or not isinstance(v, Sequence) or not all(isinstance(a, str) for a in v):
        raise ShockError(f"{kind}.assets", f"expected a list of asset keys, got {v!r}")
    out = tuple(v)
    if len(set(out)) != len(out):
        raise ShockError(f"{kind}.assets", f"duplicate asset in {list(out)}")
    if required and not out:
        raise ShockError(f"{kind}.assets", "at least one asset is required")
    return out


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


def _round_price(x: Fraction | float) -> int:
    return max(MIN_PRICE, round(x))


def _window(kind: str, from_ts: int | None, to_ts: int | None) -> None:
    if from_ts is not None and to_ts is not None and to_ts < from_ts:
        raise ShockError(f"{kind}.to_ts", f"{to_ts} is before from_ts {from_ts}")


#: most points a shock's grid may have (a year of 12-second blocks is 2.6e6; a to_ts written in
#: milliseconds beside a from_ts in seconds asks for ~1e10 steps of a minute)
MAX_STEPS = 10**7


def _steps(kind: str, from_ts: int, to_ts: int, step_s: int) -> None:
    n = (to_ts - from_ts) // step_s
    if n > MAX_STEPS:
        raise ShockError(f"{kind}.to_ts", (
            f"from_ts {from_ts} to to_ts {to_ts} is {n} steps of {step_s} s, more than {MAX_STEPS}: "
            "unix seconds, not milliseconds?"))


# ------------------------------------------------------------------------------------ shocks
@dataclass(frozen=True, slots=True)
class Scale:
    """Multiply the prices in force on ``[from_ts, to_ts]`` (``None``: unbounded) by
    ``factor >= 0``: the observations there, and the price in force at ``from_ts``; after
    ``to_ts`` the unscaled price in force is back (points added where needed)."""

    kind: ClassVar[str] = "scale"
    factor: Fraction
    from_ts: int | None = None
    to_ts: int | None = None
    assets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        f = _frac(self.kind, "factor", self.factor)
        if f < 0:
            raise ShockError("scale.factor", f"must be >= 0, got {self.factor}")
        _set(self, "factor", f)
        _set(self, "from_ts", _opt_int(self.kind, "from_ts", self.from_ts))
        _set(self, "to_ts", _opt_int(self.kind, "to_ts", self.to_ts))
        _window(self.kind, self.from_ts, self.to_ts)
        _set(self, "assets", _assets(self.kind, self.assets))


@dataclass(frozen=True, slots=True)
class Shift:
    """From ``at_ts`` on, add ``amount`` (signed, price units: with several paths, only with
    ``assets``) or move by ``pct`` (a fraction,
    ``>= -1``: ``-0.3`` = 30 % lower); exactly one of the two. With ``ramp_s > 0`` the move grows
    linearly from 0 at ``at_ts`` to full at ``at_ts + ramp_s``. The price in force moves too: the
    full move holds from ``at_ts + ramp_s`` (a point there where the path has none)."""

    kind: ClassVar[str] = "shift"
    at_ts: int
    amount: int | None = None
    pct: Fraction | None = None
    ramp_s: int = 0
    assets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "at_ts", _int(self.kind, "at_ts", self.at_ts))
        if (self.amount is None) == (self.pct is None):
            raise ShockError("shift.amount", "give exactly one of amount and pct")
        if self.amount is not None:
            _set(self, "amount", _int(self.kind, "amount", self.amount))
        if self.pct is not None:
            p = _frac(self.kind, "pct", self.pct)
            if p < -1:
                raise ShockError("shift.pct", f"must be >= -1 (a fall of at most 100 %), got {self.pct}")
            _set(self, "pct", p)
        _set(self, "ramp_s", _int(self.kind, "ramp_s", self.ramp_s, minimum=0))
        _set(self, "assets", _assets(self.kind, self.assets))


@dataclass(frozen=True, slots=True)
class Stretch:
    """Map every timestamp to ``anchor_ts + (ts - anchor_ts) * factor`` (``factor > 0``), rounded
    half to even; prices and their order are unchanged (two observations may share a second
    after a compression; they keep their order). Only the given observations move: in a replay
    the path is the window's rounds, so a compression leaves the window's tail at the last
    round's price (the rounds after the window are not read) and a stretch pushes rounds past its
    end (dropped); the gaps between rounds scale too, past a feed's heartbeat if need be."""

    kind: ClassVar[str] = "stretch"
    anchor_ts: int
    factor: Fraction
    assets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "anchor_ts", _int(self.kind, "anchor_ts", self.anchor_ts))
        f = _frac(self.kind, "factor", self.factor)
        if f <= 0:
            raise ShockError("stretch.factor", f"must be > 0, got {self.factor}")
        _set(self, "factor", f)
        _set(self, "assets", _assets(self.kind, self.assets))


@dataclass(frozen=True, slots=True)
class Correlated:
    """One move ``pct`` at ``at_ts`` (ramped over ``ramp_s``) applied to each asset in ``betas``
    scaled by its beta: asset ``a`` moves by ``pct * betas[a]`` (floored at -100 %)."""

    kind: ClassVar[str] = "correlated"
    at_ts: int
    pct: Fraction
    betas: Mapping[str, Fraction]
    ramp_s: int = 0

    def __post_init__(self) -> None:
        _set(self, "at_ts", _int(self.kind, "at_ts", self.at_ts))
        _set(self, "pct", _frac(self.kind, "pct", self.pct))
        if not isinstance(self.betas, Mapping) or not self.betas:
            raise ShockError("correlated.betas", "expected a non-empty table asset -> beta")
        betas = {}
        for k in sorted(self.betas):
            if not isinstance(k, str):
                raise ShockError("correlated.betas", f"asset key {k!r} is not a string")
            betas[k] = _frac(self.kind, f"betas.{k}", self.betas[k])
        _set(self, "betas", betas)
        _set(self, "ramp_s", _int(self.kind, "ramp_s", self.ramp_s, minimum=0))


@dataclass(frozen=True, slots=True)
class Resample:
    """Insert last-observation-carried-forward points every ``step_s`` seconds on
    ``[from_ts, to_ts]`` (existing observations are kept; grid points that coincide with one
    are not duplicated). Points before the first observation are not invented."""

    kind: ClassVar[str] = "resample"
    step_s: int
    from_ts: int
    to_ts: int
    assets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "step_s", _int(self.kind, "step_s", self.step_s, minimum=1))
        _set(self, "from_ts", _int(self.kind, "from_ts", self.from_ts))
        _set(self, "to_ts", _int(self.kind, "to_ts", self.to_ts))
        _window(self.kind, self.from_ts, self.to_ts)
        _steps(self.kind, self.from_ts, self.to_ts, self.step_s)
        _set(self, "assets", _assets(self.kind, self.assets))


def _mc_common(obj: StudentT | Bootstrap) -> None:
    k = obj.kind
    _set(obj, "from_ts", _int(k, "from_ts", obj.from_ts))
    _set(obj, "to_ts", _int(k, "to_ts", obj.to_ts))
    if obj.to_ts <= obj.from_ts:
        raise ShockError(f"{k}.to_ts", f"{obj.to_ts} must be after from_ts {obj.from_ts}")
    _set(obj, "step_s", _int(k, "step_s", obj.step_s, minimum=1))
    _steps(k, obj.from_ts, obj.to_ts, obj.step_s)
    if obj.step_s > obj.to_ts - obj.from_ts:
        raise ShockError(f"{k}.step_s", f"{obj.step_s} s is longer than the span from_ts..to_ts "
                         f"({obj.to_ts - obj.from_ts} s): no step would be simulated")
    _set(obj, "assets", _assets(k, obj.assets, required=True))


@dataclass(frozen=True, slots=True)
class StudentT:
    """Monte Carlo path on ``(from_ts, to_ts]`` every ``step_s`` seconds: log return per step
    ``drift * dt + vol * sqrt(dt) * e`` with ``dt = step_s / SECONDS_PER_YEAR`` and ``e`` a
    unit-variance Student-t with ``df > 2`` degrees of freedom (``None``, in a scenario
    ``df = "normal"``: standard normal, i.e. geometric Brownian motion),
    correlated across ``assets`` by ``correlation`` (default: identity). ``vol`` is one annual
    volatility for all assets or one per asset."""

    kind: ClassVar[str] = "student_t"
    from_ts: int
    to_ts: int
    step_s: int
    assets: tuple[str, ...]
    vol: float | tuple[float, ...]
    df: float | None = 4.0
    drift: float = 0.0
    correlation: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        _mc_common(self)
        n = len(self.assets)
        vols = self.vol if isinstance(self.vol, Sequence) else (self.vol,) * n
        if len(vols) != n:
            raise ShockError("student_t.vol", f"expected one vol or {n} (one per asset), got {len(vols)}")
        vols = tuple(_float(self.kind, "vol", v) for v in vols)
        if any(v < 0 for v in vols):
            raise ShockError("student_t.vol", f"must be >= 0, got {list(vols)}")
        _set(self, "vol", vols)
        if isinstance(self.df, str):  # TOML has no null: a scenario writes df = "normal"
            if self.df.lower() not in ("normal", "gaussian"):
                raise ShockError("student_t.df", f"expected a number > 2 or \"normal\", got {self.df!r}")
            _set(self, "df", None)
        if self.df is not None:
            df = _float(self.kind, "df", self.df)
            if df <= 2:
                raise ShockError("student_t.df", f"must be > 2 (finite variance), got {self.df}")
            _set(self, "df", df)
        _set(self, "drift", _float(self.kind, "drift", self.drift))
        if self.correlation is not None:
            rows = tuple(tuple(_float(self.kind, "correlation", x) for x in r) for r in self.correlation)
            _check_correlation(rows, n)
            _set(self, "correlation", rows)


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Monte Carlo path on ``(from_ts, to_ts]`` every ``step_s`` seconds from a circular block
    bootstrap (blocks of ``block_len`` steps) of the assets' own log returns on the same grid
    over ``[history_from_ts, history_to_ts]`` (default: the span all assets cover up to
    ``from_ts``). The history ends at ``from_ts`` at the latest: the path after it is the future
    the simulated path replaces, so ``history_to_ts`` after ``from_ts`` (look-ahead) is refused."""

    kind: ClassVar[str] = "bootstrap"
    from_ts: int
    to_ts: int
    step_s: int
    assets: tuple[str, ...]
    block_len: int = 60
    history_from_ts: int | None = None
    history_to_ts: int | None = None

    def __post_init__(self) -> None:
        _mc_common(self)
        _set(self, "block_len", _int(self.kind, "block_len", self.block_len, minimum=1))
        _set(self, "history_from_ts", _opt_int(self.kind, "history_from_ts", self.history_from_ts))
        _set(self, "history_to_ts", _opt_int(self.kind, "history_to_ts", self.history_to_ts))
        _window(self.kind, self.history_from_ts, self.history_to_ts)
        if self.history_to_ts is not None and self.history_to_ts > self.from_ts:
            raise ShockError("bootstrap.history_to_ts", (
                f"{self.history_to_ts} is after from_ts {self.from_ts}: the returns after the shock's "
                "start are the future its path replaces (look-ahead); end the history at from_ts or before"))


Shock: TypeAlias = Scale | Shift | Stretch | Correlated | Resample | StudentT | Bootstrap

SHOCK_KINDS: Mapping[str, type[Shock]] = {
    c.kind: c for c in (Scale, Shift, Stretch, Correlated, Resample, StudentT, Bootstrap)}


def parse_shock(table: Mapping[str, object], where: str = "shock") -> Shock:
    """A shock from a scenario table (``kind = "scale"``, then its fields). Unknown kinds and
    keys, and bad values, raise :class:`ShockError` prefixed with ``where``."""
    kind = table.get("kind")
    cls = SHOCK_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ShockError(f"{where}.kind",
                         f"unknown shock kind {kind!r}; expected one of {sorted(SHOCK_KINDS)}")
    allowed = {f.name for f in fields(cls)}
    kw = {k: v for k, v in table.items() if k != "kind"}
    extra = sorted(set(kw) - allowed)
    if extra:
        raise ShockError(f"{where}.{extra[0]}", f"unknown key for a {kind} shock; expected {sorted(allowed)}")
    for k in ("assets", "vol", "correlation"):
        v = kw.get(k)
        if isinstance(v, list):
            kw[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
    try:
        return cls(**kw)  # type: ignore[arg-type]
    except ShockError as e:
        raise ShockError(f"{where}.{e.field.split('.', 1)[-1]}", str(e).split(": ", 1)[-1]) from None
    except TypeError as e:  # a required field is missing
        raise ShockError(f"{where}", f"{kind} shock: {e}") from None


# --------------------------------------------------------------------------------- helpers
def _check_correlation(m: tuple[tuple[float, ...], ...], n: int) -> None:
    if len(m) != n or any(len(r) != n for r in m):
        raise ShockError("student_t.correlation", f"expected a {n}x{n} matrix (one row per asset)")
    for i in range(n):
        if m[i][i] != 1.0:
            raise ShockError("student_t.correlation", f"diagonal element [{i}][{i}] is {m[i][i]}, not 1")
        for j in range(n):
            if m[i][j] != m[j][i] or not -1.0 <= m[i][j] <= 1.0:
                raise ShockError("student_t.correlation", f"element [{i}][{j}] breaks symmetry or [-1, 1]")
    cholesky(m)


def cholesky(m: Sequence[Sequence[float]]) -> list[list[float]]:
    """Lower-triangular ``L`` with ``L @ L.T == m``; raises :class:`ShockError` when ``m`` is not
    positive definite."""
    n = len(m)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = m[i][j] - sum(low[i][k] * low[j][k] for k in range(j))
            if i == j:
                if s <= 0.0:
                    raise ShockError("student_t.correlation", "matrix is not positive definite")
                low[i][j] = math.sqrt(s)
            else:
                low[i][j] = s / low[j][j]
    return low


def shock_rng(seed: int, position: int) -> random.Random:
    """The generator of the shock at ``position`` in a run seeded with ``seed``."""
    digest = hashlib.sha256(f"deficit-shock:{seed}:{position}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def student_t_vectors(rng: random.Random, low: Sequence[Sequence[float]], df: float | None,
                      n: int) -> list[list[float]]:
    """``n`` draws of a unit-variance multivariate Student-t (``df``; ``None``: normal) whose
    correlation is ``low @ low.T``: ``L z * sqrt((df - 2) / w)`` with one ``w ~ chi2(df)`` per
    draw shared by all components."""
    k = len(low)
    out = []
    for _ in range(n):
        z = [rng.gauss(0.0, 1.0) for _ in range(k)]
        x = [sum(low[i][j] * z[j] for j in range(i + 1)) for i in range(k)]
        if df is not None:
            w = rng.gammavariate(df / 2.0, 2.0)
            s = math.sqrt((df - 2.0) / w)
            x = [v * s for v in x]
        out.append(x)
    return out


def _check_paths(paths: Paths) -> None:
    for key in sorted(paths):
        prev: int | None = None
        for i, obs in enumerate(paths[key]):
            if not (isinstance(obs, tuple) and len(obs) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in obs)):
                raise ShockError(f"paths[{key}][{i}]", f"expected an (int ts, int price) pair, got {obs!r}")
            ts, price = obs
            if price < MIN_PRICE:
                raise ShockError(f"paths[{key}][{i}]", f"price {price} at ts {ts} is not positive")
            if prev is not None and ts < prev:
                raise ShockError(f"paths[{key}][{i}]", f"ts {ts} is before the previous {prev}: not sorted")
            prev = ts


def _targets(paths: Paths, assets: Sequence[str], kind: str, key: str = "assets") -> list[str]:
    if not assets:
        return sorted(paths)
    missing = [a for a in assets if a not in paths]
    if missing:
        raise ShockError(f"{kind}.{key}", f"no price path for {missing[0]!r}; have {sorted(paths)}")
    return list(assets)


def _in_force(path: Path, ts: int) -> int:
    """Price in force at ``ts``: the last observation at or before it, else the first."""
    price = path[0][1]
    for t, p in path:
        if t > ts:
            break
        price = p
    return price


def _ramp(ts: int, at: int, ramp_s: int) -> Fraction:
    if ts < at:
        return Fraction(0)
    if ramp_s == 0 or ts >= at + ramp_s:
        return Fraction(1)
    return Fraction(ts - at, ramp_s)


def _breaks(path: Path, times: Sequence[int]) -> tuple[list[Observation], set[int]]:
    """``path`` with a carried-forward point at each of ``times`` (the price in force then) where
    it has no observation, and the indexes of those points. None before the first observation."""
    have = {t for t, _ in path}
    add = sorted({t for t in times if path and t >= path[0][0] and t not in have})
    out: list[Observation] = []
    inserted: set[int] = set()
    i = 0
    for t in add:
        while i < len(path) and path[i][0] <= t:
            out.append(path[i])
            i += 1
        inserted.add(len(out))
        out.append((t, out[-1][1]))
    out.extend(path[i:])
    return out, inserted


def _drop_idle(out: Sequence[Observation], inserted: set[int]) -> Path:
    """``out`` without the inserted points that change nothing (same price as the one before)."""
    return tuple(o for i, o in enumerate(out) if i not in inserted or o[1] != out[i - 1][1])


def _move(path: Path, at: int, ramp_s: int, pct: Fraction | None, amount: int | None) -> Path:
    # the move acts on the price in force from ``at`` (the full move from the ramp's end), not only
    # on the next observation: a point there, where the path has none
    pts, inserted = _breaks(path, [at + ramp_s])
    out = []
    for ts, p in pts:
        f = _ramp(ts, at, ramp_s)
        if f == 0:
            out.append((ts, p))
        elif amount is not None:
            out.append((ts, _round_price(p + f * amount)))
        else:
            assert pct is not None
            out.append((ts, _round_price(p * (1 + f * max(pct, Fraction(-1))))))
    return _drop_idle(out, inserted)


def _scale(path: Path, s: Scale) -> Path:
    lo = s.from_ts if s.from_ts is not None else -(2**63)
    hi = s.to_ts if s.to_ts is not None else 2**63
    # scaled from from_ts, back to the unscaled price in force after to_ts: points there
    pts, inserted = _breaks(path, [t for t in (s.from_ts, None if s.to_ts is None else s.to_ts + 1)
                                   if t is not None])
    out = [(t, _round_price(p * s.factor)) if lo <= t <= hi else (t, p) for t, p in pts]
    return _drop_idle(out, inserted)


def _grid(from_ts: int, to_ts: int, step: int) -> list[int]:
    return list(range(from_ts + step, to_ts + 1, step))


def _splice(path: Path, s: Shock, start: int, sim: list[tuple[int, int]]) -> Path:
    """Keep observations up to from_ts, then ``sim``, then the rest rescaled to its end."""
    assert isinstance(s, StudentT | Bootstrap)
    before = [o for o in path if o[0] <= s.from_ts]
    after = [o for o in path if o[0] > s.to_ts]
    end = sim[-1][1] if sim else start
    ratio = Fraction(end, _in_force(path, s.to_ts))
    return tuple(before + sim + [(t, _round_price(p * ratio)) for t, p in after])


def _simulate(paths: dict[str, Path], s: StudentT | Bootstrap, keys: list[str],
              steps: list[list[float]], grid: list[int]) -> None:
    for j, key in enumerate(keys):
        path = paths[key]
        start = _in_force(path, s.from_ts)
        price = float(start)
        sim = []
        for ts, ret in zip(grid, steps, strict=True):
            try:
                price *= math.exp(ret[j])
                sim.append((ts, _round_price(price)))
            except OverflowError:  # beyond a float, so far beyond any feed answer (MAX_PRICE)
                raise ShockError(f"{s.kind}.assets", (
                    f"the simulated price of {key!r} overflows at ts {ts} (a float above 1.8e308; "
                    f"no feed answers above {MAX_PRICE}): lower vol or drift")) from None
        paths[key] = _splice(path, s, start, sim)


def _student_t(paths: dict[str, Path], s: StudentT, rng: random.Random) -> None:
    keys = _targets(paths, s.assets, s.kind)
    n = len(keys)
    corr = s.correlation or tuple(tuple(1.0 if i == j else 0.0 for j in range(n)) for i in range(n))
    low = cholesky(corr)
    grid = _grid(s.from_ts, s.to_ts, s.step_s)
    dt = s.step_s / SECONDS_PER_YEAR
    vols = s.vol if isinstance(s.vol, tuple) else (s.vol,) * n
    draws = student_t_vectors(rng, low, s.df, len(grid))
    steps = [[s.drift * dt + vols[j] * math.sqrt(dt) * e[j] for j in range(n)] for e in draws]
    _simulate(paths, s, keys, steps, grid)


def _history_returns(paths: Mapping[str, Path], s: Bootstrap, keys: list[str]) -> list[list[float]]:
    lo = max(paths[k][0][0] for k in keys if paths[k])
    hi = min(min(paths[k][-1][0] for k in keys if paths[k]), s.from_ts)  # no look-ahead
    if s.history_from_ts is not None:
        lo = max(lo, s.history_from_ts)
    if s.history_to_ts is not None:
        hi = min(hi, s.history_to_ts)
    grid = list(range(lo, hi + 1, s.step_s))
    if len(grid) - 1 < s.block_len:
        raise ShockError("bootstrap.block_len",
                         f"the history window [{lo}, {hi}] holds {max(0, len(grid) - 1)} returns of "
                         f"{s.step_s} s, fewer than one block of {s.block_len} (the history ends at "
                         f"from_ts {s.from_ts} at the latest)")
    cols = []
    for k in keys:
        path, i, price, levels = paths[k], 0, paths[k][0][1], []
        for ts in grid:
            while i < len(path) and path[i][0] <= ts:
                price = path[i][1]
                i += 1
            levels.append(price)
        cols.append([math.log(levels[t + 1] / levels[t]) for t in range(len(levels) - 1)])
    return [list(r) for r in zip(*cols, strict=True)]


def _bootstrap(paths: dict[str, Path], s: Bootstrap, rng: random.Random) -> None:
    keys = _targets(paths, s.assets, s.kind)
    for k in keys:
        if not paths[k]:
            raise ShockError("bootstrap.assets", f"path {k!r} is empty: no history to resample")
    hist = _history_returns(paths, s, keys)
    grid = _grid(s.from_ts, s.to_ts, s.step_s)
    steps: list[list[float]] = []
    while len(steps) < len(grid):
        start = rng.randrange(len(hist))
        steps.extend(hist[(start + i) % len(hist)] for i in range(s.block_len))
    _simulate(paths, s, keys, steps[:len(grid)], grid)


def _resample(path: Path, s: Resample) -> Path:
    if not path:
        return path
    have = {t for t, _ in path}
    extra = [t for t in range(s.from_ts, s.to_ts + 1, s.step_s) if t not in have and t >= path[0][0]]
    merged: list[Observation] = []
    i = 0
    for t in extra:
        while i < len(path) and path[i][0] <= t:
            merged.append(path[i])
            i += 1
        merged.append((t, merged[-1][1]))
    merged.extend(path[i:])
    return tuple(merged)


def _apply_one(paths: dict[str, Path], s: Shock, rng: random.Random) -> None:
    if isinstance(s, Scale):
        for k in _targets(paths, s.assets, s.kind):
            paths[k] = _scale(paths[k], s)
    elif isinstance(s, Shift):
        if s.amount and not s.assets and len(paths) > 1:
            raise ShockError("shift.assets", (
                f"an amount ({s.amount}) is in one feed's price units; without assets it would be "
                f"added to every path ({sorted(paths)}): name the feed(s) it is for, or use pct"))
        for k in _targets(paths, s.assets, s.kind):
            paths[k] = _move(paths[k], s.at_ts, s.ramp_s, s.pct, s.amount)
    elif isinstance(s, Correlated):
        for k in _targets(paths, tuple(s.betas), s.kind, "betas"):
            paths[k] = _move(paths[k], s.at_ts, s.ramp_s, s.pct * s.betas[k], None)
    elif isinstance(s, Stretch):
        for k in _targets(paths, s.assets, s.kind):
            paths[k] = tuple((s.anchor_ts + round((t - s.anchor_ts) * s.factor), p) for t, p in paths[k])
    elif isinstance(s, Resample):
        for k in _targets(paths, s.assets, s.kind):
            paths[k] = _resample(paths[k], s)
    elif isinstance(s, StudentT):
        _student_t(paths, s, rng)
    else:
        _bootstrap(paths, s, rng)


def apply_shocks(paths: Paths, shocks: Sequence[Shock], seed: int, *,
                 keep_resampled: bool = True,
                 carried: Mapping[str, Collection[int]] | None = None) -> dict[str, Path]:
    """Apply ``shocks`` in order to ``paths`` (validated: sorted, positive prices) and return the
    new paths (a new dict; the input is not modified). ``seed`` seeds every stochastic shock
    through :func:`shock_rng`. ``keep_resampled=False``: drop the points a ``resample`` inserted
    that no later shock moved off the price before them (they change nothing in the step function;
    a replay would publish each as an oracle round: a fresh ``updatedAt`` on no new price), and
    likewise the points of ``paths`` that ``carried`` names (key -> timestamps: points the caller
    added carrying the price before them, to see what the shocks make of it then)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ShockError("seed", f"expected an integer, got {seed!r}")
    _check_paths(paths)
    out = {k: tuple(paths[k]) for k in sorted(paths)}
    #: per path, the timestamps of the points a resample inserted (followed through stretches)
    carried_at: dict[str, set[int]] = {k: set((carried or {}).get(k, ())) for k in out}
    for i, s in enumerate(shocks):
        if not isinstance(s, Scale | Shift | Stretch | Correlated | Resample | StudentT | Bootstrap):
            raise ShockError(f"shocks[{i}]", f"not a shock: {s!r}")
        before = dict(out)
        try:
            _apply_one(out, s, shock_rng(seed, i))
        except ShockError as e:  # which shock: several may share a kind
            rest = e.field.split(".", 1)[1] if e.field.startswith(f"{s.kind}.") else e.field
            raise ShockError(f"shock[{i}].{rest}", str(e).split(": ", 1)[-1]) from None
        if isinstance(s, Resample):
            for k in _targets(out, s.assets, s.kind):
                carried_at[k] |= {t for t, _ in out[k]} - {t for t, _ in before[k]}
        elif isinstance(s, Stretch):
            for k in _targets(out, s.assets, s.kind):
                carried_at[k] = {s.anchor_ts + round((t - s.anchor_ts) * s.factor) for t in carried_at[k]}
        elif isinstance(s, StudentT | Bootstrap):  # the simulated points replace them
            for k in s.assets:
                carried_at[k] = {t for t in carried_at[k] if not s.from_ts < t <= s.to_ts}
        for key in sorted(out):
            high = [o for o in out[key] if o[1] > MAX_PRICE]
            if high:
                raise ShockError(f"shock[{i}]", (
                    f"the {s.kind} shock takes the price of {key!r} at ts {high[0][0]} to {high[0][1]}, "
                    f"above any feed answer (int256 max {MAX_PRICE})"))
    if not keep_resampled:
        for k, marks in carried_at.items():
            kept: list[Observation] = []
            for t, p in out[k]:
                if not (t in marks and kept and p == kept[-1][1]):
                    kept.append((t, p))
            out[k] = tuple(kept)
    return out
