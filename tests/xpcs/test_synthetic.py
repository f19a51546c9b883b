"""The synthetic generator and the embedded default dataset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hpcfit.xpcs.model import c2_slots
from hpcfit.xpcs.params import INDEX, REGISTRY
from hpcfit.xpcs.synthetic import EMBEDDED, EMBEDDED_FIXED, embedded, generate, write_npz


def clean_maps(spec) -> np.ndarray:
    t = (spec.start_frame + np.arange(spec.n_frames)) * spec.dt
    n_phi = len(spec.phi)
    return np.asarray(
        c2_slots(
            np.asarray(spec.truth),
            t,
            np.full(n_phi, spec.q),
            spec.dt,
            np.asarray(spec.phi),
            np.asarray(spec.contrast),
            np.asarray(spec.offset),
        )
    )


@pytest.fixture(scope="module")
def data():
    return embedded()


@pytest.fixture(scope="module")
def clean():
    return clean_maps(EMBEDDED)


def test_embedded_dataset_layout(data):
    assert data.c2.shape == (3, 100, 100) and data.c2.dtype == np.float64
    assert data.pooled().size == 14850
    assert np.array_equal(np.bincount(data.pooled().a, minlength=3), [4950, 4950, 4950])
    assert np.array_equal(data.q, np.full(3, 0.0054))
    assert np.array_equal(data.phi, [0.0, 45.0, 90.0])
    assert np.array_equal(data.sigma, [0.002, 0.002, 0.003])
    assert (data.dt, data.start_frame) == (0.01, 1)
    assert np.allclose(data.t, np.linspace(0.01, 1.0, 100), rtol=0, atol=1e-15)
    assert data.provenance["source"] == "embedded" and data.provenance["seed"] == 12345
    assert data.provenance["truth"] == [
        3000.0, 0.2, 0.0, 30000.0, 0.5, 0.0, 1500.0, 0.3, 0.0, 0.4, -0.8, 0.0, 0.1, 3.0,
    ]  # fmt: skip
    # f2 and the three offsets are fixed, at their truth 0 (= the registry default)
    assert set(EMBEDDED_FIXED) == {"f2", "D_offset_ref", "D_offset_sample", "v_offset"}
    for name in EMBEDDED_FIXED:
        assert EMBEDDED.truth[INDEX[name]] == 0.0 == REGISTRY[INDEX[name]].default


def test_embedded_noise_free_spans(clean):
    """The noise-free upper-triangle spans, known to two decimals."""
    iu, ju = np.triu_indices(100, k=1)
    quoted = [(1.03, 1.30), (1.04, 1.28), (1.18, 1.26)]
    for a, (lo, hi) in enumerate(quoted):
        upper = clean[a, iu, ju]
        assert abs(upper.min() - lo) <= 0.005 and abs(upper.max() - hi) <= 0.005, a


def test_exactly_symmetric(data):
    assert np.array_equal(data.c2, np.swapaxes(data.c2, 1, 2))


def test_deterministic_per_seed(data):
    again = embedded()
    assert np.array_equal(again.c2, data.c2)
    other = generate(dataclasses.replace(EMBEDDED, seed=EMBEDDED.seed + 1))
    assert not np.array_equal(other.c2, data.c2)


def test_noise_is_the_spec_draw_in_spec_order(data, clean):
    """ε from Generator(PCG64(seed)), slot-major, row-major upper triangle incl. the diagonal."""
    n = 100
    iu, ju = np.triu_indices(n, k=0)
    eps = np.random.Generator(np.random.PCG64(EMBEDDED.seed)).standard_normal(3 * iu.size)
    expected = np.asarray(EMBEDDED.sigma)[:, None] * eps.reshape(3, iu.size)
    # c2 = clean + σε was rounded once, so c2 − clean recovers σε to half an ulp of c2 (< 2)
    assert np.max(np.abs((data.c2 - clean)[:, iu, ju] - expected)) <= 2.3e-16


@pytest.mark.parametrize("seed", [12345, 1, 2])
def test_noise_statistics(seed, clean):
    spec = dataclasses.replace(EMBEDDED, seed=seed)
    noise = generate(spec).c2 - clean
    iu, ju = np.triu_indices(100, k=0)
    for a, sigma in enumerate(spec.sigma):
        r = noise[a, iu, ju]
        # n = 5050: the sd of the sample sd is σ/√(2n) ≈ 1%, so 5% is 5 standard errors
        assert abs(r.std(ddof=1) / sigma - 1.0) < 0.05, (seed, a)
        assert abs(r.mean()) < 4.0 * sigma / np.sqrt(r.size), (seed, a)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"truth": (1.0,) * 13}, "truth"),
        ({"contrast": (0.3, 0.3)}, "contrast"),
        ({"offset": (1.0,) * 4}, "offset"),
        ({"sigma": (0.002,)}, "sigma"),
    ],
)
def test_generate_rejects_inconsistent_specs(change, match):
    with pytest.raises(ValueError, match=match):
        generate(dataclasses.replace(EMBEDDED, **change))


def test_write_npz_flat_layout(tmp_path):
    spec = dataclasses.replace(EMBEDDED, n_frames=8, phi=(10.0, 200.0), contrast=(0.3, 0.2))
    spec = dataclasses.replace(spec, offset=(1.0, 1.1), sigma=(0.01, 0.02), start_frame=3)
    data = generate(spec)
    assert np.array_equal(data.phi, [10.0, -160.0])  # normalised to [-180, 180)
    path = write_npz(data, tmp_path / "synthetic.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert np.array_equal(npz["c2"], data.c2)
        assert np.array_equal(npz["t"], (3 + np.arange(8)) * 0.01)
        assert np.array_equal(npz["q"], data.q) and np.array_equal(npz["phi"], data.phi)
        assert np.array_equal(npz["sigma"], [0.01, 0.02])
        assert float(npz["dt"]) == 0.01 and int(npz["start_frame"]) == 3
        assert np.array_equal(npz["truth"], spec.truth)
