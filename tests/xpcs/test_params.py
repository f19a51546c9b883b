"""Parameter registry, validation, fixing and narrowed bounds."""

from __future__ import annotations

import numpy as np
import pytest

from hpcfit.xpcs.params import (
    CONTRAST,
    INDEX,
    NAMES,
    OFFSET,
    REGISTRY,
    ParamInfo,
    default_space,
    make_space,
)

# The parameter table: (name, default, lo, hi, prior mean, prior sd).
SPEC_TABLE = [
    ("D0_ref", 1e4, 100.0, 1e6, 1e4, 5e3),
    ("alpha_ref", 0.0, -2.0, 2.0, 0.0, 1.0),
    ("D_offset_ref", 0.0, -1e5, 1e5, 0.0, 1e3),
    ("D0_sample", 1e4, 100.0, 1e6, 1e4, 5e3),
    ("alpha_sample", 0.0, -2.0, 2.0, 0.0, 1.0),
    ("D_offset_sample", 0.0, -1e5, 1e5, 0.0, 1e3),
    ("v0", 1e3, 1e-6, 1e4, 1e3, 500.0),
    ("beta", 0.0, -2.0, 2.0, 0.0, 1.0),
    ("v_offset", 0.0, -100.0, 100.0, 0.0, 25.0),
    ("f0", 0.5, 0.0, 1.0, 0.5, 0.25),
    ("f1", 0.0, -10.0, 10.0, 0.0, 5.0),
    ("f2", 0.0, -1e4, 1e4, 0.0, 1e3),
    ("f3", 0.0, 0.0, 1.0, 0.0, 0.5),
    ("phi0", 0.0, -10.0, 10.0, 0.0, 5.0),
]


def test_registry_matches_spec_table():
    got = [(p.name, p.default, p.lo, p.hi, p.prior_mean, p.prior_sd) for p in REGISTRY]
    assert got == SPEC_TABLE
    assert NAMES == tuple(row[0] for row in SPEC_TABLE)
    assert all(INDEX[name] == k for k, name in enumerate(NAMES))
    assert (CONTRAST.default, CONTRAST.lo, CONTRAST.hi, CONTRAST.prior_mean, CONTRAST.prior_sd) == (
        0.5,
        0.0,
        1.0,
        0.5,
        0.25,
    )
    assert (OFFSET.default, OFFSET.lo, OFFSET.hi, OFFSET.prior_mean, OFFSET.prior_sd) == (
        1.0,
        0.5,
        1.5,
        1.0,
        0.25,
    )


def test_default_space_fixes_only_f2():
    space = default_space()
    assert space.free_names == tuple(n for n in NAMES if n != "f2")
    assert space.vary_contrast and space.vary_offset
    for arr in (space.start, space.lo, space.hi, space.prior_mean, space.prior_sd):
        assert arr.dtype == np.float64 and arr.shape == (14,)


@pytest.mark.parametrize(
    "fixed",
    [(), ("f2",), ("f2", "D_offset_ref", "D_offset_sample", "v_offset"), tuple(NAMES)],
    ids=["none", "f2", "embedded", "all"],
)
def test_fixed_parameters_are_excluded_from_the_unknowns(fixed):
    space = make_space(fixed=fixed, start={"v_offset": 3.0})
    assert space.free_names == tuple(n for n in NAMES if n not in fixed)
    assert np.array_equal(space.free_index, [INDEX[n] for n in space.free_names])
    values = np.arange(1, len(space.free_names) + 1, dtype=np.float64) * 0.01
    full = space.full(values)
    assert np.array_equal(full[space.free_index], values)
    held = [INDEX[n] for n in fixed]
    assert np.array_equal(full[held], space.start[held])  # fixed ones keep their start value
    assert full is not space.start and space.start[INDEX["v_offset"]] == 3.0


def test_narrowed_bounds_and_overrides():
    space = make_space(
        start={"D0_ref": 4e4},
        bounds={"D0_ref": (2e4, 5e4), "phi0": (-3.0, 3.0)},
        priors={"phi0": (1.0, 2.0)},
    )
    k, p = INDEX["D0_ref"], INDEX["phi0"]
    assert (space.lo[k], space.hi[k], space.start[k]) == (2e4, 5e4, 4e4)
    assert (space.lo[p], space.hi[p]) == (-3.0, 3.0)
    assert (space.prior_mean[p], space.prior_sd[p]) == (1.0, 2.0)
    # untouched parameters keep the registry values
    others = [i for i in range(14) if i not in (k, p)]
    assert np.array_equal(space.lo[others], [REGISTRY[i].lo for i in others])
    assert np.array_equal(space.hi[others], [REGISTRY[i].hi for i in others])
    assert space.prior_mean[k] == 1e4 and space.prior_sd[k] == 5e3


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"start": {"D0_refx": 1.0}}, "D0_refx"),
        ({"bounds": {"gamma": (0.0, 1.0)}}, "gamma"),
        ({"priors": {"phi_0": (0.0, 1.0)}}, "phi_0"),
        ({"fixed": ("f2", "f4")}, "f4"),
        ({"bounds": {"alpha_ref": (1.0, 1.0)}}, "alpha_ref"),
        ({"bounds": {"beta": (2.0, -2.0)}}, "beta"),
        ({"bounds": {"v0": (0.0, np.inf)}}, "v0"),
        ({"start": {"f0": 1.5}}, "f0"),
        ({"start": {"phi0": np.nan}}, "phi0"),
        # narrowing the bounds so that the (default) start lies outside them
        ({"bounds": {"D0_sample": (2e4, 5e4)}}, "D0_sample"),
        ({"priors": {"f1": (0.0, 0.0)}}, "f1"),
        ({"priors": {"f3": (0.0, -1.0)}}, "f3"),
        ({"contrast": ParamInfo("contrast", "1", 1.2, 0.0, 1.0, 0.5, 0.25)}, "contrast"),
        ({"offset": ParamInfo("offset", "1", 1.0, 1.5, 0.5, 1.0, 0.25)}, "offset"),
    ],
)
def test_validation_errors_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        make_space(**kwargs)


@pytest.mark.parametrize(
    ("bounds", "fixed"),
    [
        ((3e4, 1e6), ()),  # prior mean 1e4, sd 5e3: the bound is 4 sd away
        ((3.5e4, 1e6), ()),  # exactly 5 sd: not "more than 5 sd"
        ((1e5, 1e6), ("D0_ref",)),  # 18 sd, but a fixed parameter has no prior
        ((-1e6, -1e5), ("D0_ref",)),
    ],
)
def test_prior_mean_within_five_sd_or_fixed_does_not_warn(bounds, fixed):
    # warnings are errors in this suite, so any warning fails the test
    make_space(start={"D0_ref": bounds[1]}, bounds={"D0_ref": bounds}, fixed=fixed)


@pytest.mark.parametrize("bounds", [(1e5, 1e6), (-1e6, -2e4)])  # 18 sd above, 6 sd below
def test_prior_mean_far_outside_narrowed_bounds_warns(bounds):
    """A far truncated tail is numerically poor: warn, naming the parameter."""
    with pytest.warns(UserWarning, match=r"\bD0_ref\b"):
        make_space(start={"D0_ref": bounds[1]}, bounds={"D0_ref": bounds})
