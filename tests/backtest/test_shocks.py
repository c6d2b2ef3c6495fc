"""Price-path shocks (backtest.shocks): algebraic properties with hypothesis, Monte Carlo
determinism, fat tails and correlation against stated statistical tolerances.

Statistical tolerances (fixed seeds, so the tests are deterministic; the bounds say how far
from the target a correct generator may land):
* kurtosis: for n = 40,000 draws the sample excess kurtosis of a normal has standard error
  sqrt(24 / n) ~ 0.024, so |excess| < 0.15 is > 6 standard errors; a unit-variance t with 5
  degrees of freedom has excess kurtosis 6, and we only ask > 1.5;
* correlation: for an elliptical distribution the sample correlation's standard error is about
  sqrt(1 + kappa) * (1 - rho^2) / sqrt(n) (kappa = 1 / (df - 4) = 0.5 for df = 6), i.e. < 0.01
  for n = 20,000; we accept |sample - target| < 0.03 (> 3 standard errors).
"""

from __future__ import annotations

import bisect
import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backtest.shocks import (
    MIN_PRICE,
    Bootstrap,
    Correlated,
    Resample,
    Scale,
    Shift,
    ShockError,
    Stretch,
    StudentT,
    apply_shocks,
    parse_shock,
)

T0 = 1_700_000_000


@st.composite
def paths_st(draw: st.DrawFn, min_price: int = 1) -> dict[str, tuple[tuple[int, int], ...]]:
    out = {}
    for key in ["eth"] + draw(st.lists(st.sampled_from(["btc", "usdc"]), max_size=2, unique=True)):
        gaps = draw(st.lists(st.integers(0, 7_200), min_size=1, max_size=40))
        prices = draw(st.lists(st.integers(min_price, 10**13), min_size=len(gaps), max_size=len(gaps)))
        ts, obs = T0, []
        for g, p in zip(gaps, prices, strict=True):
            ts += g
            obs.append((ts, p))
        out[key] = tuple(obs)
    return out


@given(paths_st(), st.integers(0, 2**32))
@settings(max_examples=60, deadline=None)
def test_identity_shocks_are_identity(paths: dict, seed: int) -> None:
    ident = [Scale(1), Shift(at_ts=T0, amount=0), Shift(at_ts=T0, pct=0, ramp_s=600),
             Stretch(anchor_ts=T0 + 100, factor=1), Correlated(at_ts=T0, pct="-0.3", betas={"eth": 0})]
    assert apply_shocks(paths, ident, seed) == paths
    assert apply_shocks(paths, [], seed) == paths


@given(paths_st(min_price=10**6), st.fractions(Fraction(1, 100), Fraction(100)),
       st.fractions(Fraction(1, 100), Fraction(100)))
@settings(max_examples=60, deadline=None)
def test_scale_composes(paths: dict, a: Fraction, b: Fraction) -> None:
    """Scaling by a then b equals scaling by a*b up to the two half-even roundings
    (|error| <= b/2 + 1/2, so <= ceil(b/2) + 1 in integers); exactly for integer factors."""
    two = apply_shocks(paths, [Scale(a), Scale(b)], 0)
    one = apply_shocks(paths, [Scale(a * b)], 0)
    bound = math.ceil(b / 2) + 1
    for k in paths:
        assert [t for t, _ in two[k]] == [t for t, _ in one[k]]
        assert all(abs(p2 - p1) <= bound for (_, p2), (_, p1) in zip(two[k], one[k], strict=True))
    ia, ib = a.numerator % 7 + 1, b.numerator % 5 + 1
    assert apply_shocks(paths, [Scale(ia), Scale(ib)], 0) == apply_shocks(paths, [Scale(ia * ib)], 0)


def test_scale_window_and_rounding_half_even() -> None:
    path = {"a": ((T0, 5), (T0 + 10, 15), (T0 + 20, 25), (T0 + 30, 7))}
    out = apply_shocks(path, [Scale("0.5", from_ts=T0 + 10, to_ts=T0 + 20)], 0)
    # 15 * 0.5 = 7.5 -> 8 (even), 25 * 0.5 = 12.5 -> 12 (even); outside the window untouched:
    # after T0 + 20 the unscaled 25 in force again (it held until T0 + 30 as 12 before)
    assert out["a"] == ((T0, 5), (T0 + 10, 8), (T0 + 20, 12), (T0 + 21, 25), (T0 + 30, 7))
    assert apply_shocks(path, [Scale(0)], 0)["a"] == tuple((t, MIN_PRICE) for t, _ in path["a"])


@given(paths_st(), st.fractions(Fraction(1, 20), Fraction(20)), st.integers(-10_000, 300_000))
@settings(max_examples=80, deadline=None)
def test_stretch_preserves_order_prices_and_anchor(paths: dict, f: Fraction, anchor_off: int) -> None:
    anchor = T0 + anchor_off
    out = apply_shocks(paths, [Stretch(anchor_ts=anchor, factor=f)], 0)
    for k, path in paths.items():
        new = out[k]
        assert [p for _, p in new] == [p for _, p in path]  # prices and their order unchanged
        ts = [t for t, _ in new]
        assert ts == sorted(ts)  # still sorted (ties possible after compression)
        for (t0, _), (t1, _) in zip(path, new, strict=True):
            if t0 == anchor:
                assert t1 == anchor  # the anchor is a fixed point
            assert abs((t1 - anchor) - (t0 - anchor) * f) <= Fraction(1, 2)
        # endpoints stay the endpoints, mapped by the same affine map
        assert new[0][0] == anchor + round((path[0][0] - anchor) * f)
        assert new[-1][0] == anchor + round((path[-1][0] - anchor) * f)


def test_shift_pct_with_ramp_and_floor() -> None:
    path = {"a": tuple((T0 + 60 * i, 1_000_000) for i in range(6))}
    out = apply_shocks(path, [Shift(at_ts=T0 + 60, pct="-0.4", ramp_s=240)], 0)["a"]
    # ramp fractions 0, 0, 1/4, 2/4, 3/4, 1 of a 40 % fall
    assert [p for _, p in out] == [1_000_000, 1_000_000, 900_000, 800_000, 700_000, 600_000]
    floored = apply_shocks(path, [Shift(at_ts=T0, amount=-5_000_000)], 0)["a"]
    assert all(p == MIN_PRICE for _, p in floored)


def test_correlated_applies_betas() -> None:
    paths = {k: ((T0, 2_000_00000000), (T0 + 600, 2_000_00000000)) for k in ("eth", "steth", "usdc")}
    out = apply_shocks(paths, [Correlated(at_ts=T0 + 300, pct="-0.5", betas={"eth": 1, "steth": "1.2"})], 0)
    assert out["eth"][1][1] == 1_000_00000000
    assert out["steth"][1][1] == 800_00000000  # -60 %
    assert out["usdc"] == paths["usdc"]
    assert out["eth"][0] == paths["eth"][0]


def test_resample_inserts_carried_forward_points() -> None:
    out = apply_shocks({"a": ((T0, 10), (T0 + 250, 20))}, [Resample(100, T0, T0 + 400)], 0)["a"]
    assert out == ((T0, 10), (T0 + 100, 10), (T0 + 200, 10), (T0 + 250, 20), (T0 + 300, 20), (T0 + 400, 20))


def _mc_paths() -> dict[str, tuple[tuple[int, int], ...]]:
    return {k: ((T0, 3_000 * 10**8), (T0 + 86_400, 3_100 * 10**8), (T0 + 2 * 86_400, 2_900 * 10**8))
            for k in ("a", "b", "c")}


@pytest.mark.parametrize("shock", [
    StudentT(from_ts=T0, to_ts=T0 + 86_400, step_s=600, assets=("a", "b"), vol=0.8, df=4,
             correlation=((1, 0.7), (0.7, 1))),
    Bootstrap(from_ts=T0 + 86_400, to_ts=T0 + 2 * 86_400, step_s=600, assets=("a", "b", "c"), block_len=6),
])
def test_monte_carlo_is_deterministic_per_seed(shock: StudentT | Bootstrap) -> None:
    base = _mc_paths()
    if isinstance(shock, Bootstrap):  # give it a history with real moves to resample
        base = apply_shocks(base, [StudentT(from_ts=T0, to_ts=T0 + 86_400, step_s=600, assets=("a", "b", "c"),
                                            vol=0.6)], 99)
    one = apply_shocks(base, [shock], 7)
    assert one == apply_shocks(base, [shock], 7)
    other = apply_shocks(base, [shock], 8)
    assert one["a"] != other["a"]
    for k in shock.assets:
        inside = [o for o in one[k] if shock.from_ts < o[0] <= shock.to_ts]
        assert [t for t, _ in inside] == list(range(shock.from_ts + 600, shock.to_ts + 1, 600))
        assert all(p >= MIN_PRICE for _, p in one[k])
        assert [o for o in one[k] if o[0] <= shock.from_ts] == [o for o in base[k] if o[0] <= shock.from_ts]


def test_monte_carlo_leaves_earlier_shocks_draws_unchanged() -> None:
    s1 = StudentT(from_ts=T0, to_ts=T0 + 3_600, step_s=60, assets=("a",), vol=1.0)
    s2 = StudentT(from_ts=T0, to_ts=T0 + 3_600, step_s=60, assets=("b",), vol=1.0)
    alone = apply_shocks(_mc_paths(), [s1], 3)
    both = apply_shocks(_mc_paths(), [s1, s2], 3)
    assert alone["a"] == both["a"]


def _log_returns(path: tuple[tuple[int, int], ...]) -> list[float]:
    return [math.log(b[1] / a[1]) for a, b in zip(path, path[1:], strict=False)]


def _excess_kurtosis(xs: list[float]) -> float:
    n = len(xs)
    m = sum(xs) / n
    v = sum((x - m) ** 2 for x in xs) / n
    return sum((x - m) ** 4 for x in xs) / n / v**2 - 3.0


def test_student_t_tails_are_heavier_than_normal() -> None:
    n, step = 40_000, 60
    base = {"a": ((T0, 10**18),)}  # a large price so integer rounding does not distort returns
    kw = dict(from_ts=T0, to_ts=T0 + n * step, step_s=step, assets=("a",), vol=0.5)
    fat = _log_returns(apply_shocks(base, [StudentT(df=5, **kw)], 11)["a"])
    thin = _log_returns(apply_shocks(base, [StudentT(df=None, **kw)], 11)["a"])
    assert len(fat) == len(thin) == n
    assert abs(_excess_kurtosis(thin)) < 0.15
    assert _excess_kurtosis(fat) > 1.5
    # both unit-variance innovations scaled to the same annual vol: per-step sd ~ 0.5 * sqrt(dt)
    sd = 0.5 * math.sqrt(step / (365 * 86_400))
    for xs in (fat, thin):
        s = math.sqrt(sum(x * x for x in xs) / len(xs))
        assert abs(s / sd - 1) < 0.05


def _corr(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


def test_correlation_of_generated_returns_matches_target() -> None:
    n, step = 20_000, 300
    target = ((1.0, 0.8, -0.3), (0.8, 1.0, 0.1), (-0.3, 0.1, 1.0))
    base = {k: ((T0, 10**18),) for k in ("x", "y", "z")}
    s = StudentT(from_ts=T0, to_ts=T0 + n * step, step_s=step, assets=("x", "y", "z"), vol=(0.9, 0.6, 0.3),
                 df=6, correlation=target)
    out = apply_shocks(base, [s], 2024)
    r = {k: _log_returns(out[k]) for k in ("x", "y", "z")}
    keys = ("x", "y", "z")
    for i in range(3):
        for j in range(i + 1, 3):
            assert abs(_corr(r[keys[i]], r[keys[j]]) - target[i][j]) < 0.03


def test_bootstrap_keeps_cross_correlation_of_history() -> None:
    n, step = 8_000, 300
    base = {k: ((T0, 10**18),) for k in ("x", "y")}
    hist = apply_shocks(base, [StudentT(from_ts=T0, to_ts=T0 + n * step, step_s=step, assets=("x", "y"),
                                        vol=0.7, df=5, correlation=((1, 0.6), (0.6, 1)))], 1)
    end = T0 + n * step
    out = apply_shocks(hist, [Bootstrap(from_ts=end, to_ts=end + n * step, step_s=step, assets=("x", "y"),
                                        block_len=24)], 5)
    rx = _log_returns(tuple(o for o in out["x"] if o[0] >= end))
    ry = _log_returns(tuple(o for o in out["y"] if o[0] >= end))
    hx, hy = _log_returns(hist["x"]), _log_returns(hist["y"])
    # the resampled returns are drawn from the history: same correlation within sampling error
    assert abs(_corr(rx, ry) - _corr(hx, hy)) < 0.05
    # every simulated return is one of the history's (up to float/integer rounding of the price)
    hs = sorted(hx)
    for x in rx:
        i = bisect.bisect_left(hs, x)
        assert min(abs(x - h) for h in hs[max(0, i - 1):i + 1]) < 1e-9


@pytest.mark.parametrize(("make", "field"), [
    (lambda: Scale(-1), "scale.factor"),
    (lambda: Scale("abc"), "scale.factor"),
    (lambda: Scale(1, from_ts=10, to_ts=5), "scale.to_ts"),
    (lambda: Shift(at_ts=T0), "shift.amount"),
    (lambda: Shift(at_ts=T0, pct="-1.5"), "shift.pct"),
    (lambda: Shift(at_ts=T0, amount=1, ramp_s=-1), "shift.ramp_s"),
    (lambda: Stretch(anchor_ts=T0, factor=0), "stretch.factor"),
    (lambda: Correlated(at_ts=T0, pct=-0.1, betas={}), "correlated.betas"),
    (lambda: StudentT(from_ts=T0, to_ts=T0 + 10, step_s=1, assets=("a",), vol=0.5, df=2), "student_t.df"),
    (lambda: StudentT(from_ts=T0, to_ts=T0 + 10, step_s=1, assets=("a", "b"), vol=0.5,
                      correlation=((1, 0.99), (0.5, 1))), "student_t.correlation"),
    (lambda: StudentT(from_ts=T0, to_ts=T0 + 10, step_s=1, assets=("a", "b"), vol=0.5,
                      correlation=((1, 1.0), (1.0, 1))), "student_t.correlation"),
    (lambda: StudentT(from_ts=T0, to_ts=T0, step_s=1, assets=("a",), vol=0.5), "student_t.to_ts"),
    (lambda: Bootstrap(from_ts=T0, to_ts=T0 + 10, step_s=0, assets=("a",)), "bootstrap.step_s"),
    (lambda: Bootstrap(from_ts=T0, to_ts=T0 + 10, step_s=1, assets=()), "bootstrap.assets"),
])
def test_bad_parameters_name_the_field(make, field: str) -> None:
    with pytest.raises(ShockError) as e:
        make()
    assert e.value.field == field


def test_bad_paths_and_unknown_assets_name_where() -> None:
    with pytest.raises(ShockError, match=r"paths\[a\]\[1\].*not sorted"):
        apply_shocks({"a": ((T0 + 5, 1), (T0, 1))}, [], 0)
    with pytest.raises(ShockError, match=r"paths\[a\]\[0\].*not positive"):
        apply_shocks({"a": ((T0, 0),)}, [], 0)
    with pytest.raises(ShockError, match=r"shock\[0\].assets: no price path for 'zz'"):
        apply_shocks({"a": ((T0, 1),)}, [Scale(2, assets=("zz",))], 0)
    with pytest.raises(ShockError, match=r"shock\[0\].block_len"):
        apply_shocks({"a": ((T0, 1), (T0 + 10, 2))}, [Bootstrap(from_ts=T0, to_ts=T0 + 5, step_s=5,
                                                                  assets=("a",), block_len=10)], 0)


def test_parse_shock_from_scenario_table() -> None:
    s = parse_shock({"kind": "shift", "at_ts": T0, "pct": -0.3, "ramp_s": 600, "assets": ["eth"]})
    assert s == Shift(at_ts=T0, pct=Fraction(-3, 10), ramp_s=600, assets=("eth",))
    t = parse_shock({"kind": "student_t", "from_ts": T0, "to_ts": T0 + 60, "step_s": 60, "assets": ["a", "b"],
                     "vol": [0.5, 0.7], "correlation": [[1, 0.5], [0.5, 1]]})
    assert isinstance(t, StudentT) and t.correlation == ((1.0, 0.5), (0.5, 1.0))
    with pytest.raises(ShockError) as e:
        parse_shock({"kind": "scale", "factor": 2, "facter": 3}, where="scenario.toml:12: shocks[0]")
    assert e.value.field == "scenario.toml:12: shocks[0].facter"
    with pytest.raises(ShockError) as e:
        parse_shock({"kind": "scale", "factor": -2}, where="shocks[1]")
    assert e.value.field == "shocks[1].factor"
    with pytest.raises(ShockError, match="unknown shock kind 'crash'"):
        parse_shock({"kind": "crash"})


def test_a_scenario_can_ask_for_gaussian_returns() -> None:
    """TOML has no null, so ``df = None`` (Gaussian returns, GBM) could not be written in a
    scenario; ``df = "normal"`` now means it and gives the very path ``df=None`` gives."""
    table = {"kind": "student_t", "from_ts": T0, "to_ts": T0 + 600, "step_s": 60, "assets": ["a"],
             "vol": 0.5}
    base = {"a": ((T0, 10**18),)}
    s = parse_shock({**table, "df": "normal"})
    assert isinstance(s, StudentT) and s.df is None
    kw = dict(from_ts=T0, to_ts=T0 + 600, step_s=60, assets=("a",), vol=0.5)
    assert apply_shocks(base, [s], 5) == apply_shocks(base, [StudentT(df=None, **kw)], 5)
    with pytest.raises(ShockError, match=r'shock.df: expected a number > 2 or "normal"'):
        parse_shock({**table, "df": "cauchy"})


def test_bootstrap_draws_no_return_from_after_its_start() -> None:
    """A bootstrap from ``from_ts`` resamples the history before it: the path after ``from_ts`` is
    what the Monte Carlo path replaces (the future at the shock's start). By default the history
    was the span all assets cover, so a crash later in the window leaked into the draws.
    History here: +-1 % steps up to from_ts; after it, a fall by half at every step."""
    step, n = 60, 200
    start = T0 + n * step
    up, down = 101 * 10**14, 100 * 10**14
    before = tuple((T0 + i * step, up if i % 2 else down) for i in range(n + 1))
    after = tuple((start + i * step, down >> i) for i in range(1, 40))
    shock = Bootstrap(from_ts=start, to_ts=start + 20 * n * step, step_s=step, assets=("a",), block_len=5)
    out = apply_shocks({"a": before + after}, [shock], 11)["a"]
    sim = [o for o in out if start <= o[0] <= shock.to_ts]
    allowed = (math.log(101 / 100), math.log(100 / 101))  # the only returns before from_ts
    for r in _log_returns(tuple(sim)):
        assert min(abs(r - a) for a in allowed) < 1e-9, r
    with pytest.raises(ShockError, match=r"bootstrap.history_to_ts.*after from_ts"):
        Bootstrap(from_ts=start, to_ts=start + 600, step_s=step, assets=("a",), history_to_ts=start + 1)


def test_a_move_between_observations_takes_effect_at_its_own_time() -> None:
    """A path is a step function (the observation in force holds until the next one). A shift at
    ``at_ts``, a scale on ``[from_ts, to_ts]`` and a correlated move act on the price in force
    from their instant, not only on the next observation: a feed with an hourly (or daily:
    stablecoins) heartbeat used to take the shock up to that long late, or never in the window.
    Expected step functions by hand."""
    flat = {"a": ((T0, 100 * 10**8), (T0 + 3_600, 100 * 10**8))}
    half = 50 * 10**8
    assert apply_shocks(flat, [Shift(at_ts=T0 + 600, pct="-0.5")], 0)["a"] == (
        (T0, 100 * 10**8), (T0 + 600, half), (T0 + 3_600, half))
    assert apply_shocks(flat, [Shift(at_ts=T0 + 600, amount=-half)], 0)["a"] == (
        (T0, 100 * 10**8), (T0 + 600, half), (T0 + 3_600, half))
    assert apply_shocks(flat, [Correlated(at_ts=T0 + 600, pct="-0.25", betas={"a": 2})], 0)["a"] == (
        (T0, 100 * 10**8), (T0 + 600, half), (T0 + 3_600, half))
    # ramped over 1,200 s: no observation inside the ramp, so the full move is in force from its end
    assert apply_shocks(flat, [Shift(at_ts=T0 + 600, pct="-0.5", ramp_s=1_200)], 0)["a"] == (
        (T0, 100 * 10**8), (T0 + 1_800, half), (T0 + 3_600, half))
    # a scale on [T0 + 30, T0 + 60]: doubled from T0 + 30, back to the price in force after T0 + 60
    two = {"a": ((T0, 10), (T0 + 100, 20))}
    assert apply_shocks(two, [Scale(2, from_ts=T0 + 30, to_ts=T0 + 60)], 0)["a"] == (
        (T0, 10), (T0 + 30, 20), (T0 + 61, 10), (T0 + 100, 20))
    # before the first observation there is no price in force: none is invented
    assert apply_shocks(flat, [Shift(at_ts=T0 - 600, pct="-0.5")], 0)["a"] == ((T0, half), (T0 + 3_600, half))


def test_a_price_no_feed_can_answer_is_refused() -> None:
    """A Chainlink answer is an int256 (AnswerUpdated(int256 current, ...), latestAnswer() returns
    int256), so no feed answers more than 2**255 - 1; a shock taking a price beyond it (a factor
    written in wei, say) produced it silently. Refused, naming the shock, the path and the time."""
    top = 2**255 - 1
    path = {"a": ((T0, 2_000 * 10**8), (T0 + 60, 10**8))}
    factor = -(-top // (2_000 * 10**8))  # ceil: the first observation lands just above the top
    with pytest.raises(ShockError, match=r"shock\[1\].*scale.*'a'.*1700000000.*int256") as e:
        apply_shocks(path, [Scale(1), Scale(factor)], 0)
    assert e.value.field == "shock[1]"
    with pytest.raises(ShockError, match=r"shock\[0\].*shift"):
        apply_shocks(path, [Shift(at_ts=T0 + 60, amount=top)], 0)
    year = 365 * 24 * 3600  # a simulated path beyond int256, and beyond a float (OverflowError before)
    mc = {"a": ((T0, 2_000 * 10**8),)}
    kw = dict(from_ts=T0, step_s=year, assets=("a",), vol=0)
    with pytest.raises(ShockError, match=r"shock\[0\].*student_t.*int256"):
        apply_shocks(mc, [StudentT(to_ts=T0 + 2 * year, drift=100, **kw)], 0)  # e^200 * 2e11 > 5.8e76
    with pytest.raises(ShockError, match=r"shock\[0\].assets.*overflows"):
        apply_shocks(mc, [StudentT(to_ts=T0 + year, drift=1e4, **kw)], 0)  # e^10000: no float
    # up to the top it is a price (bounds below it are the feed's own: declared min/max answers)
    assert apply_shocks({"a": ((T0, 1),)}, [Scale(top)], 0)["a"] == ((T0, top),)


def test_resampled_points_nothing_moved_can_be_left_out() -> None:
    """``keep_resampled=False`` (what a replay asks for) drops the carried-forward points a
    resample inserted that are still repeats at the end, through a stretch too; the ones a later
    ramp moved stay (hand-derived: +10 % over 200 s from T0 + 100 on a flat 1,000)."""
    path = {"a": ((T0, 1_000), (T0 + 1_000, 1_000))}
    grid = Resample(50, T0, T0 + 1_000)
    stretch = Stretch(anchor_ts=T0, factor=2)
    assert apply_shocks(path, [grid, stretch], 0, keep_resampled=False) == apply_shocks(path, [stretch], 0)
    assert len(apply_shocks(path, [grid, stretch], 0)["a"]) == 21  # kept by default
    ramp = apply_shocks(path, [grid, Shift(at_ts=T0 + 100, pct="0.1", ramp_s=200)], 0, keep_resampled=False)
    assert ramp["a"] == ((T0, 1_000), (T0 + 150, 1_025), (T0 + 200, 1_050), (T0 + 250, 1_075),
                         (T0 + 300, 1_100), (T0 + 1_000, 1_100))


def test_an_amount_shift_on_every_feed_is_refused() -> None:
    """``amount`` is in one feed's price units (USD 1e8 for ETH / USD); without ``assets`` it was
    added to every path, so a -500 USD move meant for ETH took a dollar stablecoin to the floor
    (1 unit) in silence. Refused where there is more than one path; named feeds, and a lone path,
    still take it."""
    paths = {"eth": ((T0, 2_000 * 10**8),), "usdc": ((T0, 10**8),)}
    with pytest.raises(ShockError, match=r"shock\[0\].assets: .*amount.*eth.*usdc"):
        apply_shocks(paths, [Shift(at_ts=T0, amount=-500 * 10**8)], 0)
    out = apply_shocks(paths, [Shift(at_ts=T0, amount=-500 * 10**8, assets=("eth",))], 0)
    assert out == {"eth": ((T0, 1_500 * 10**8),), "usdc": ((T0, 10**8),)}
    assert apply_shocks({"eth": paths["eth"]}, [Shift(at_ts=T0, amount=-500 * 10**8)], 0) == {
        "eth": ((T0, 1_500 * 10**8),)}


def test_a_monte_carlo_step_longer_than_its_span_is_refused() -> None:
    """``step_s`` beyond ``to_ts - from_ts`` leaves the grid empty: no simulated point, the path's
    observations in the span deleted and the later ones rescaled to undo its move (a flat path
    where a Monte Carlo one was asked for), silently. Refused at step_s."""
    path = {"a": ((T0, 100), (T0 + 30, 50), (T0 + 90, 60))}
    with pytest.raises(ShockError) as e:
        StudentT(from_ts=T0, to_ts=T0 + 59, step_s=60, assets=("a",), vol=0.5)
    assert e.value.field == "student_t.step_s"
    with pytest.raises(ShockError) as e:
        Bootstrap(from_ts=T0, to_ts=T0 + 59, step_s=60, assets=("a",))
    assert e.value.field == "bootstrap.step_s"
    one = apply_shocks(path, [StudentT(from_ts=T0, to_ts=T0 + 60, step_s=60, assets=("a",), vol=0.0)], 0)
    assert one["a"] == ((T0, 100), (T0 + 60, 100), (T0 + 90, 120))  # flat, one step; 60 * 100/50 after


def test_points_a_caller_carries_are_dropped_unless_a_shock_moves_them() -> None:
    """``carried`` names points the caller added (a replay: the price in force at the window's
    first second); with ``keep_resampled=False`` they go unless the shocks moved them off the
    price before them (by hand: a 50 % fall ramped over 1,200 s from T0 is half done at T0 + 600)."""
    path = {"a": ((T0 - 100, 2_000), (T0 + 600, 2_000), (T0 + 5_000, 2_000))}
    ramp = Shift(at_ts=T0, pct="-0.5", ramp_s=1_200)
    out = apply_shocks(path, [ramp], 0, keep_resampled=False, carried={"a": {T0 + 600}})
    assert out["a"] == ((T0 - 100, 2_000), (T0 + 600, 1_500), (T0 + 1_200, 1_000), (T0 + 5_000, 1_000))
    late = Shift(at_ts=T0 + 1_000, pct="-0.5")
    out = apply_shocks(path, [late], 0, keep_resampled=False, carried={"a": {T0 + 600}})
    assert out["a"] == ((T0 - 100, 2_000), (T0 + 1_000, 1_000), (T0 + 5_000, 1_000))


def test_a_grid_of_millions_of_steps_is_refused() -> None:
    """A to_ts in milliseconds beside a from_ts in seconds asks a Monte Carlo path (or a resample)
    for ~2.7e10 steps of 60 s: the run ran out of memory or never ended. Refused at to_ts."""
    ms = (T0 + 3_600) * 1000
    for make in (lambda: StudentT(from_ts=T0, to_ts=ms, step_s=60, assets=("a",), vol=0.5),
                 lambda: Bootstrap(from_ts=T0, to_ts=ms, step_s=60, assets=("a",)),
                 lambda: Resample(60, T0, ms)):
        with pytest.raises(ShockError, match=r"to_ts: .*steps.*milliseconds"):
            make()
    StudentT(from_ts=T0, to_ts=T0 + 365 * 86_400, step_s=12, assets=("a",), vol=0.5)  # a year of blocks
