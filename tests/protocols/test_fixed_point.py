"""Fixed-point helpers against exact rational arithmetic (the definition of each rounding)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols import fixed_point as fp

u128 = st.integers(0, 2**128 - 1)
pos = st.integers(1, 2**128 - 1)
bps = st.integers(1, 20_000)


def half_up(x: Fraction) -> int:
    """Round half up for non-negative rationals."""
    return int(x + Fraction(1, 2)) if x >= 0 else -int(-x + Fraction(1, 2))


def ceil(x: Fraction) -> int:
    return -((-x.numerator) // x.denominator)


def floor(x: Fraction) -> int:
    return x.numerator // x.denominator


@given(u128, u128)
def test_mul_roundings(a, b):
    assert fp.wad_mul_half_up(a, b) == half_up(Fraction(a * b, fp.WAD))
    assert fp.ray_mul_half_up(a, b) == half_up(Fraction(a * b, fp.RAY))
    assert fp.ray_mul_floor(a, b) == floor(Fraction(a * b, fp.RAY))
    assert fp.ray_mul_ceil(a, b) == ceil(Fraction(a * b, fp.RAY))


@given(u128, pos)
def test_div_roundings(a, b):
    # Solidity's (a*U + b/2)/b equals half-up exactly only for even b; for odd b it rounds
    # .5 - 1/(2b) up, which is the contract's behaviour we must keep, so compare to the formula
    assert fp.wad_div_half_up(a, b) == (a * fp.WAD + b // 2) // b
    assert fp.ray_div_half_up(a, b) == (a * fp.RAY + b // 2) // b
    assert fp.ray_div_floor(a, b) == floor(Fraction(a * fp.RAY, b))
    assert fp.ray_div_ceil(a, b) == ceil(Fraction(a * fp.RAY, b))
    if b % 2 == 0:
        assert fp.ray_div_half_up(a, b) == half_up(Fraction(a * fp.RAY, b))


@given(u128, bps)
def test_percentages(v, p):
    assert fp.percent_mul_half_up(v, p) == half_up(Fraction(v * p, 10_000))
    assert fp.percent_mul_floor(v, p) == floor(Fraction(v * p, 10_000))
    assert fp.percent_mul_ceil(v, p) == ceil(Fraction(v * p, 10_000))
    assert fp.percent_div_half_up(v, p) == (v * 10_000 + p // 2) // p
    assert fp.percent_div_floor(v, p) == floor(Fraction(v * 10_000, p))
    assert fp.percent_div_ceil(v, p) == ceil(Fraction(v * 10_000, p))


@given(st.integers(0, 2**200))
def test_ray_to_wad(a):
    assert fp.ray_to_wad_half_up(a) == half_up(Fraction(a, 10**9))
    assert fp.wad_to_ray(fp.ray_to_wad_half_up(a)) - a <= 5 * 10**8


def test_overflow_reverts_like_the_contract():
    with pytest.raises(fp.ArithmeticOverflow):
        fp.ray_mul_half_up(2**200, 2**200)
    with pytest.raises(fp.ArithmeticOverflow):
        fp.percent_div_half_up(1, 0)
    with pytest.raises(fp.ArithmeticOverflow):
        fp.wad_div_half_up(1, 0)


@given(st.integers(0, 10 * fp.RAY), st.integers(0, 10 * fp.SECONDS_PER_YEAR))
def test_interest_is_close_to_the_true_exponential_and_never_above_it(rate, dt):
    exact = (1 + Fraction(rate, fp.RAY * fp.SECONDS_PER_YEAR)) ** min(dt, 3)
    if dt <= 2:  # the binomial expansion is exact up to the cubic term
        assert abs(Fraction(fp.compounded_interest_v3(rate, 0, dt), fp.RAY) - exact) < Fraction(
            dt * 2, 10**26) + Fraction(1, 10**25)
    lin = fp.linear_interest_v3(rate, 0, dt)
    comp3 = fp.compounded_interest_v3(rate, 0, dt)
    comp2 = fp.compounded_interest_v2(rate, 0, dt)
    assert fp.RAY <= lin <= comp3 + 1
    assert lin - dt - 1 <= comp2  # v2 truncates the per-second rate: < 1 wei-ray lost per second
    assert fp.compounded_interest_v3(rate, 5, 5) == fp.RAY


def test_known_values():
    # 5% APY-ish variable rate over one year: binomial approximation of e^0.05
    r = 5 * 10**25
    assert fp.linear_interest_v3(r, 0, fp.SECONDS_PER_YEAR) == fp.RAY + r
    c = fp.compounded_interest_v3(r, 0, fp.SECONDS_PER_YEAR)
    # the series 1 + 0.05 + 0.05^2/2 + 0.05^3/6 = 1.05127083...; the contract truncates
    # basePowerThree to an integer number of ray-units per second (3 instead of 3.98), so its
    # cubic term is ~25% low: 1.0512657 — the approximation under-accrues, never over-accrues
    assert 1_051_260_000 * 10**18 < c < 1_051_270_833 * 10**18
