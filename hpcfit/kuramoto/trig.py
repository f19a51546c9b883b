"""Sine and cosine together, as vectorisable float64 arithmetic (no library calls).

Every RK4 stage of the Kuramoto vector field needs sin θ and cos θ of all N phases, and the
gradient workload differentiates through them. ``benchmarks/kuramoto_trig.py`` measures what this
kernel buys against ``jnp.sin``/``jnp.cos`` (record ``kuramoto_trig-vm-20261207.json``, 2-core
AMD EPYC, jax 0.12.1, float64; jnp time / this kernel's, medians): the gradient of the coupling
field of 16 networks is 2.95× (N = 256), 1.77× (1024) and 1.61× (4096) faster with it; the
field's forward pass is the same (1.02–1.11×, the two matrix-vector products dominate); the
pair alone is faster with it at N = 256 (1.42×) but slower at N ≥ 1024 (0.16–0.24×). It is
kept for the gradient. The two differ by at most 0.5 ulp on phases in ±50 rad.

Method (Cody & Waite, "Software Manual for the Elementary Functions", 1980, ch. 8):

* argument reduction ``x = n·π/2 + r`` with n = round(2x/π) and π/2 split into four float64
  parts of at most 26 significant bits, so the products n·P₁, n·P₂, n·P₃ are exact for
  |n| < 2²⁷ (|x| ≲ 2·10⁸ rad) and |r| ≤ π/4 (1 + 2⁻⁵⁰);
* Taylor polynomials of sin r (to r¹⁷) and cos r (to r¹⁸), whose truncation errors on |r| ≤ π/4
  are below 10⁻¹⁹ (|r|¹⁹/19! and |r|²⁰/20!), evaluated in Horner form in z = r²;
* the quadrant n mod 4 picks ±sin r or ±cos r.

Beyond |x| ≈ 2·10⁸ the reduction error grows like ulp(x), the spacing of the phases themselves.
Phases are not wrapped, so |θ| grows like |ω|·t; 2·10⁸ rad is far beyond any run of this
workload. The derivative is defined analytically (d sin = cos dx, d cos = −sin dx), so reverse
mode stores no polynomial intermediates.
"""

from __future__ import annotations

import math
from fractions import Fraction

import jax
import jax.numpy as jnp

# π to 60 decimal places; the split below needs about 110 bits of it.
_PI = Fraction("3.141592653589793238462643383279502884197169399375105820974944")
_SPLIT_BITS = 26


def _leading_bits(value: Fraction, bits: int) -> float:
    """``value`` truncated to its first ``bits`` significant bits (exactly representable)."""
    exponent = math.floor(math.log2(float(value)))
    while Fraction(2) ** exponent > value:  # guard the float log against an off-by-one
        exponent -= 1
    while Fraction(2) ** (exponent + 1) <= value:
        exponent += 1
    scale = Fraction(2) ** (bits - 1 - exponent)
    return float(Fraction(math.floor(value * scale)) / scale)


def _cody_waite_split(value: Fraction, parts: int) -> tuple[float, ...]:
    out = []
    rest = value
    for _ in range(parts - 1):
        head = _leading_bits(rest, _SPLIT_BITS)
        out.append(head)
        rest -= Fraction(head)
    out.append(float(rest))
    return tuple(out)


HALF_PI_PARTS = _cody_waite_split(_PI / 2, 4)
"""π/2 = P₁ + P₂ + P₃ + P₄; P₁…P₃ carry 26 significant bits each, P₄ the rounded rest."""
TWO_OVER_PI = float(2 / _PI)
_SIN_COEFFS = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(1, 9))  # r³ … r¹⁷
_COS_COEFFS = tuple((-1) ** k / math.factorial(2 * k) for k in range(1, 10))  # r² … r¹⁸


def _horner(z: jax.Array, coeffs: tuple[float, ...]) -> jax.Array:
    """c₀ + c₁z + c₂z² + … in Horner form."""
    acc = coeffs[-1] * z + coeffs[-2]
    for c in coeffs[-3::-1]:
        acc = acc * z + c
    return acc


def _sincos(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    n = jnp.round(x * TWO_OVER_PI)
    r = x
    for part in HALF_PI_PARTS:
        r = r - n * part
    z = r * r
    s = r + r * z * _horner(z, _SIN_COEFFS)
    c = 1.0 + z * _horner(z, _COS_COEFFS)
    quadrant = n.astype(jnp.int64) & 3
    sin = jnp.where(quadrant == 0, s, jnp.where(quadrant == 1, c, jnp.where(quadrant == 2, -s, -c)))
    cos = jnp.where(quadrant == 0, c, jnp.where(quadrant == 1, -s, jnp.where(quadrant == 2, -c, s)))
    return sin, cos


@jax.custom_jvp
def sincos(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sin x, cos x) elementwise, float64, within about one ulp of libm for |x| ≲ 2·10⁸.

    Parameters
    ----------
    x : Float64[Array, "..."]  angles (rad), finite

    Returns
    -------
    (sin x, cos x) : two Float64[Array, "..."] of the shape of x
    """
    return _sincos(x)


@sincos.defjvp
def _sincos_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    s, c = sincos(x)
    return (s, c), (c * dx, -s * dx)
