"""Fixed-point helpers of Aave's math libraries, in exact Python ints, rounding in every name.

Ported from (read, not copied):

* ``WadRayMath.sol`` and ``PercentageMath.sol`` — aave/aave-v3-core @ 782f519 (v3.0.2,
  ``contracts/protocol/libraries/math/``), identical in aave/protocol-v2 @ ce53c4a for the
  half-up functions; the ``*_floor``/``*_ceil`` variants from aave-dao/aave-v3-origin v3.5.0.
* ``MathUtils.sol`` — linear and compounded interest, v3 (aave-v3-core @ 782f519) and v2
  (protocol-v2 @ ce53c4a) variants, which order their operations differently.

Units: WAD = 1e18, RAY = 1e27, percentages in basis points with PERCENTAGE_FACTOR = 1e4.
Solidity reverts on uint256 overflow; these helpers raise :class:`ArithmeticOverflow` where the
contract would revert, so an impossible state is never silently accepted.
"""

from __future__ import annotations

__all__ = [
    "WAD", "HALF_WAD", "RAY", "HALF_RAY", "WAD_RAY_RATIO", "PERCENTAGE_FACTOR",
    "HALF_PERCENTAGE_FACTOR", "SECONDS_PER_YEAR", "UINT256_MAX", "ArithmeticOverflow",
    "wad_mul_half_up", "wad_div_half_up", "ray_mul_half_up", "ray_div_half_up",
    "ray_mul_floor", "ray_mul_ceil", "ray_div_floor", "ray_div_ceil", "ray_to_wad_half_up",
    "wad_to_ray", "percent_mul_half_up", "percent_div_half_up", "percent_mul_floor",
    "percent_mul_ceil", "percent_div_floor", "percent_div_ceil", "mul_div_floor",
    "mul_div_ceil", "linear_interest_v3", "compounded_interest_v3", "compounded_interest_v34",
    "compounded_interest_v2",
]

WAD = 10**18
HALF_WAD = WAD // 2
RAY = 10**27
HALF_RAY = RAY // 2
WAD_RAY_RATIO = 10**9
PERCENTAGE_FACTOR = 10**4
HALF_PERCENTAGE_FACTOR = PERCENTAGE_FACTOR // 2
SECONDS_PER_YEAR = 365 * 24 * 3600
UINT256_MAX = 2**256 - 1


class ArithmeticOverflow(ArithmeticError):
    """The contract would revert (uint256 overflow or division by zero)."""


def _u256(x: int) -> int:
    if x > UINT256_MAX or x < 0:
        raise ArithmeticOverflow(f"{x} is outside uint256")
    return x


def wad_mul_half_up(a: int, b: int) -> int:
    """``WadRayMath.wadMul``: (a*b + WAD/2) / WAD."""
    return _u256(a * b + HALF_WAD) // WAD


def wad_div_half_up(a: int, b: int) -> int:
    """``WadRayMath.wadDiv``: (a*WAD + b/2) / b."""
    if b == 0:
        raise ArithmeticOverflow("wadDiv by zero")
    return _u256(a * WAD + b // 2) // b


def ray_mul_half_up(a: int, b: int) -> int:
    """``WadRayMath.rayMul``: (a*b + RAY/2) / RAY."""
    return _u256(a * b + HALF_RAY) // RAY


def ray_div_half_up(a: int, b: int) -> int:
    """``WadRayMath.rayDiv``: (a*RAY + b/2) / b."""
    if b == 0:
        raise ArithmeticOverflow("rayDiv by zero")
    return _u256(a * RAY + b // 2) // b


def ray_mul_floor(a: int, b: int) -> int:
    """v3.5 ``WadRayMath.rayMulFloor``: a*b / RAY rounded down."""
    return _u256(a * b) // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    """v3.5 ``WadRayMath.rayMulCeil``: a*b / RAY rounded up."""
    return -(-_u256(a * b) // RAY)


def ray_div_floor(a: int, b: int) -> int:
    """v3.5 ``WadRayMath.rayDivFloor``: a*RAY / b rounded down."""
    if b == 0:
        raise ArithmeticOverflow("rayDiv by zero")
    return _u256(a * RAY) // b


def ray_div_ceil(a: int, b: int) -> int:
    """v3.5 ``WadRayMath.rayDivCeil``: a*RAY / b rounded up."""
    if b == 0:
        raise ArithmeticOverflow("rayDiv by zero")
    return -(-_u256(a * RAY) // b)


def ray_to_wad_half_up(a: int) -> int:
    """``WadRayMath.rayToWad``: a / 1e9, remainder >= 0.5e9 rounds up."""
    q, r = divmod(a, WAD_RAY_RATIO)
    return q + (1 if r >= WAD_RAY_RATIO // 2 else 0)


def wad_to_ray(a: int) -> int:
    """``WadRayMath.wadToRay``: a * 1e9 (reverts on overflow)."""
    return _u256(a * WAD_RAY_RATIO)


def percent_mul_half_up(value: int, percentage: int) -> int:
    """``PercentageMath.percentMul``: (value*bps + 0.5e4) / 1e4."""
    return _u256(value * percentage + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_div_half_up(value: int, percentage: int) -> int:
    """``PercentageMath.percentDiv``: (value*1e4 + bps/2) / bps."""
    if percentage == 0:
        raise ArithmeticOverflow("percentDiv by zero")
    return _u256(value * PERCENTAGE_FACTOR + percentage // 2) // percentage


def percent_mul_floor(value: int, percentage: int) -> int:
    """v3.5 ``PercentageMath.percentMulFloor``."""
    return _u256(value * percentage) // PERCENTAGE_FACTOR


def percent_mul_ceil(value: int, percentage: int) -> int:
    """v3.5 ``PercentageMath.percentMulCeil``."""
    return -(-_u256(value * percentage) // PERCENTAGE_FACTOR)


def percent_div_floor(value: int, percentage: int) -> int:
    """v3.5 ``PercentageMath.percentDivFloor``."""
    if percentage == 0:
        raise ArithmeticOverflow("percentDiv by zero")
    return _u256(value * PERCENTAGE_FACTOR) // percentage


def percent_div_ceil(value: int, percentage: int) -> int:
    """v3.5 ``PercentageMath.percentDivCeil``."""
    if percentage == 0:
        raise ArithmeticOverflow("percentDiv by zero")
    return -(-_u256(value * PERCENTAGE_FACTOR) // percentage)


def mul_div_floor(a: int, b: int, c: int) -> int:
    """a*b/c rounded down (Solidity ``a * b / c`` on uint256, with its overflow check)."""
    if c == 0:
        raise ArithmeticOverflow("division by zero")
    return _u256(a * b) // c


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """a*b/c rounded up (v3.5 ``MathUtils.mulDivCeil``)."""
    if c == 0:
        raise ArithmeticOverflow("division by zero")
    return -(-_u256(a * b) // c)


def linear_interest_v3(rate_ray: int, last_update_ts: int, current_ts: int) -> int:
    """``MathUtils.calculateLinearInterest`` (v2 and v3 agree): RAY + rate*dt/SECONDS_PER_YEAR."""
    return RAY + _u256(rate_ray * (current_ts - last_update_ts)) // SECONDS_PER_YEAR


def compounded_interest_v3(rate_ray: int, last_update_ts: int, current_ts: int) -> int:
    """``MathUtils.calculateCompoundedInterest`` of v3: the 3-term binomial approximation of
    (1 + rate/year)^dt, with the per-second powers taken *after* multiplying the yearly rate."""
    exp = current_ts - last_update_ts
    if exp == 0:
        return RAY
    exp_minus_one = exp - 1
    exp_minus_two = exp - 2 if exp > 2 else 0
    base_power_two = ray_mul_half_up(rate_ray, rate_ray) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base_power_three = ray_mul_half_up(base_power_two, rate_ray) // SECONDS_PER_YEAR
    second_term = _u256(exp * exp_minus_one * base_power_two) // 2
    third_term = _u256(exp * exp_minus_one * exp_minus_two * base_power_three) // 6
    return RAY + _u256(rate_ray * exp) // SECONDS_PER_YEAR + second_term + third_term


def compounded_interest_v34(rate_ray: int, last_update_ts: int, current_ts: int) -> int:
    """``MathUtils.calculateCompoundedInterest`` of Aave v3.4+ (aave-dao/aave-v3-origin v3.4.0,
    d7a6412): ``x = rate*dt/YEAR``, ``RAY + x + rayMul(x, x/2 + rayMul(x, x/6))`` (the full
    x^2/2 + x^3/6, no exp*(exp-1) factors)."""
    exp = current_ts - last_update_ts
    if exp == 0:
        return RAY
    x = _u256(rate_ray * exp) // SECONDS_PER_YEAR
    return RAY + x + ray_mul_half_up(x, x // 2 + ray_mul_half_up(x, x // 6))


def compounded_interest_v2(rate_ray: int, last_update_ts: int, current_ts: int) -> int:
    """``MathUtils.calculateCompoundedInterest`` of v2: per-second rate first, then powers."""
    exp = current_ts - last_update_ts
    if exp == 0:
        return RAY
    exp_minus_one = exp - 1
    exp_minus_two = exp - 2 if exp > 2 else 0
    rate_per_second = rate_ray // SECONDS_PER_YEAR
    base_power_two = ray_mul_half_up(rate_per_second, rate_per_second)
    base_power_three = ray_mul_half_up(base_power_two, rate_per_second)
    second_term = _u256(exp * exp_minus_one * base_power_two) // 2
    third_term = _u256(exp * exp_minus_one * exp_minus_two * base_power_three) // 6
    return RAY + rate_per_second * exp + second_term + third_term
