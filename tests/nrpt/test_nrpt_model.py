"""Ising models: grid builder, model-file validation, energies, graph layout."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from nrpt_helpers import random_graph

from hpcfit.errors import ConfigError, DataError
from hpcfit.nrpt import IsingModel, grid_model, load_model_file
from hpcfit.nrpt.graph import (
    colour_classes,
    colour_layout,
    greedy_colouring,
    is_proper,
    neighbour_table,
)


def _write(tmp_path, doc, name="model.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


GOOD = {"n": 3, "edges": [[0, 1], [1, 2]], "J": [1.0, -0.5], "h": [0.1, 0.0, -0.2]}


def test_grid_model_open_and_periodic_edge_counts():
    m = grid_model(4)
    assert m.n == 16 and m.n_edges == 2 * 4 * 3 and m.grid == (4, False)
    p = grid_model(3, periodic=True)
    assert p.n_edges == 2 * 9
    deg = np.bincount(p.edges.ravel(), minlength=9)
    assert np.all(deg == 4)
    # open grid: corners 2, edges 3, interior 4
    deg_open = np.bincount(m.edges.ravel(), minlength=16).reshape(4, 4)
    assert deg_open[0, 0] == 2 and deg_open[0, 1] == 3 and deg_open[1, 1] == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"L": 1}, "nrpt.L must be >= 2"),
        ({"L": 2, "periodic": True}, "nrpt.L must be >= 3"),
        ({"L": 2.5}, "nrpt.L must be an integer"),
        ({"L": 3, "J": float("nan")}, "nrpt.J must be a finite number"),
        ({"L": 3, "beta": -1.0}, "beta_t"),
    ],
)
def test_grid_model_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        grid_model(**kwargs)


def test_energy_matches_definition():
    m = load_model_file_from_dict(GOOD)
    for s in itertools.product((-1, 1), repeat=3):
        s = np.array(s)
        expected = -(0.1 * s[0] - 0.2 * s[2] + 1.0 * s[0] * s[1] - 0.5 * s[1] * s[2])
        assert m.energy(s) == pytest.approx(expected, abs=1e-15)


def load_model_file_from_dict(doc, tmp=None):
    return IsingModel(
        n=doc["n"], edges=np.array(doc["edges"]), J=np.array(doc["J"]), h=np.array(doc["h"])
    )


def test_model_file_round_trip(tmp_path):
    m = load_model_file(_write(tmp_path, GOOD), beta=0.5)
    assert m.n == 3 and m.beta_t == 0.5 and m.grid is None
    np.testing.assert_array_equal(m.edges, [[0, 1], [1, 2]])
    np.testing.assert_array_equal(m.J, [1.0, -0.5])
    assert m.edges.dtype == np.int64 and m.J.dtype == np.float64
    with pytest.raises(ValueError):
        m.J[0] = 3.0  # read-only


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"edges": [[0, 3], [1, 2]]}, r"'edges\[0\]' = \[0, 3\] has a spin id outside \[0, 3\)"),
        ({"edges": [[0, -1], [1, 2]]}, r"'edges\[0\]'.*outside"),
        ({"edges": [[1, 1], [1, 2]]}, r"'edges\[0\]' = \[1, 1\] is a self-loop"),
        ({"edges": [[0, 1], [1, 0]]}, r"repeats the pair \[0, 1\] \(either orientation\)"),
        ({"edges": [[0, 1], [0, 1]]}, r"repeats the pair \[0, 1\]"),
        ({"J": [1.0]}, r"field 'J' must have 2 values \(one per edge\)"),
        ({"h": [0.0, 0.0]}, r"field 'h' must have 3 values \(one per spin\)"),
        ({"J": [1.0, float("inf")]}, r"field 'J\[1\]' must be finite"),
        ({"h": [0.0, float("nan"), 0.0]}, r"field 'h\[1\]' must be finite"),
        ({"n": "3"}, r"field 'n' must be an integer"),
        ({"n": 0}, r"field 'n' must be >= 1"),
        ({"n": True}, r"field 'n' must be an integer"),
        ({"edges": [[0, 1.5], [1, 2]]}, r"'edges\[0\]' must be a pair of integers"),
        ({"edges": [[0, 1, 2]]}, r"'edges\[0\]' must be a pair of integers"),
        ({"edges": {"a": 1}}, r"field 'edges' must be a list"),
        ({"J": ["x", 1.0]}, r"field 'J\[0\]' must be a number"),
        ({"h": 0.5}, r"field 'h' must be a list"),
    ],
)
def test_model_file_validation_names_file_and_field(tmp_path, change, match):
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(DataError, match=match) as info:
        load_model_file(path)
    assert str(path) in str(info.value)


def test_model_file_unreadable_or_incomplete(tmp_path):
    with pytest.raises(DataError, match="model file not found"):
        load_model_file(tmp_path / "missing.json")
    with pytest.raises(DataError, match="not a readable JSON"):
        load_model_file(_write(tmp_path, "{not json"))
    with pytest.raises(DataError, match=r"missing field\(s\) \['J'\]"):
        load_model_file(_write(tmp_path, {k: v for k, v in GOOD.items() if k != "J"}))
    with pytest.raises(DataError, match="expected a JSON object"):
        load_model_file(_write(tmp_path, [1, 2]))
    with pytest.raises(ConfigError, match="nrpt.beta"):
        load_model_file(_write(tmp_path, GOOD), beta=-0.1)


def test_constructor_validates_with_config_errors():
    with pytest.raises(ConfigError, match=r"IsingModel: field 'edges\[0\]'.*self-loop"):
        IsingModel(n=2, edges=np.array([[0, 0]]), J=np.array([1.0]), h=np.zeros(2))
    with pytest.raises(ConfigError, match="field 'beta_t'"):
        IsingModel(n=1, edges=np.zeros((0, 2), int), J=np.zeros(0), h=np.zeros(1), beta_t=-1)


def test_neighbour_table_lists_each_edge_twice_sorted():
    m = grid_model(3)
    nbr, w = neighbour_table(m.n, m.edges, m.J)
    assert nbr.shape == (9, 4) and nbr.dtype == np.int32
    for i in range(9):
        listed = [int(j) for j, c in zip(nbr[i], w[i], strict=True) if c != 0]
        expected = sorted(
            {b for a, b in m.edges.tolist() if a == i} | {a for a, b in m.edges.tolist() if b == i}
        )
        assert listed == expected
    assert np.count_nonzero(w) == 2 * m.n_edges


@pytest.mark.parametrize(
    "model",
    [grid_model(4), grid_model(4, periodic=True), grid_model(5, periodic=True), grid_model(5)],
    ids=["open4", "torus4", "torus5", "open5"],
)
def test_colourings_are_proper(model):
    classes = colour_classes(model)
    assert is_proper(classes, model.edges, model.n)
    odd_torus = model.grid[1] and model.grid[0] % 2 == 1
    if odd_torus:  # no 2-colouring exists: greedy largest-degree-first is used
        assert len(classes) >= 3
    else:  # checkerboard
        assert len(classes) == 2
        r, c = np.divmod(classes[0], model.grid[0])
        assert np.all((r + c) % 2 == 0)


def test_greedy_colouring_on_random_graph_is_proper_and_deterministic():
    edges = random_graph(30, 0.2, seed=1)
    colour = greedy_colouring(30, edges)
    assert np.all(colour[edges[:, 0]] != colour[edges[:, 1]])
    np.testing.assert_array_equal(colour, greedy_colouring(30, edges))
    deg = np.bincount(edges.ravel(), minlength=30)
    assert colour[np.argmax(deg)] == 0  # the first node taken is the largest degree one


def test_colour_layout_makes_classes_contiguous():
    m = grid_model(4)
    perm, slices = colour_layout(m)
    assert sorted(perm.tolist()) == list(range(16))
    classes = colour_classes(m)
    for (a, b), ids in zip(slices, classes, strict=True):
        np.testing.assert_array_equal(perm[a:b], ids)
