"""Graph layout for the heat-bath explorer.

* :func:`neighbour_table`: a padded neighbour list (ELL format, n × max_degree) so kernels only
  gather, never scatter-add: row i lists i's neighbours in increasing id order and their
  couplings; padding slots point at spin 0 with coupling 0 (0·s = ±0 adds nothing).
* :func:`colour_classes`: a proper colouring, one array of spin ids per class. Checkerboard for
  open grids and even periodic grids; otherwise greedy largest-degree-first, ties by spin id,
  each spin taking the smallest colour no coloured neighbour holds. Deterministic.
* :func:`colour_layout`: spins renumbered so that every class is one contiguous slice, which turns
  each class update into a slice update.

Pure NumPy.
"""

from __future__ import annotations

import numpy as np

from hpcfit.nrpt.model import IsingModel


def degrees(n: int, edges: np.ndarray) -> np.ndarray:
    """Int64[(n,)] number of edges at each spin."""
    return np.bincount(edges.reshape(-1), minlength=n).astype(np.int64)


def neighbour_table(n: int, edges: np.ndarray, J: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Padded neighbour list.

    Returns
    -------
    nbr : Int32[(n, d_max)]  neighbour ids, increasing along each row, padded with 0
    w : Float64[(n, d_max)]  coupling J_ij of each listed neighbour, 0 in padding slots
    """
    d_max = int(degrees(n, edges).max(initial=0))
    rows: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for (a, b), j in zip(edges.tolist(), np.asarray(J, dtype=np.float64).tolist(), strict=True):
        rows[a].append((b, j))
        rows[b].append((a, j))
    nbr = np.zeros((n, d_max), dtype=np.int32)
    w = np.zeros((n, d_max), dtype=np.float64)
    for i, row in enumerate(rows):
        row.sort()
        for k, (j, c) in enumerate(row):
            nbr[i, k] = j
            w[i, k] = c
    return nbr, w


def greedy_colouring(n: int, edges: np.ndarray) -> np.ndarray:
    """Int64[(n,)] colour of each spin: largest degree first (ties by id), smallest free colour."""
    deg = degrees(n, edges)
    adjacency: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges.tolist():
        adjacency[a].add(b)
        adjacency[b].add(a)
    order = sorted(range(n), key=lambda i: (-int(deg[i]), i))
    colour = np.full(n, -1, dtype=np.int64)
    for i in order:
        taken = {int(colour[j]) for j in adjacency[i] if colour[j] >= 0}
        c = 0
        while c in taken:
            c += 1
        colour[i] = c
    return colour


def checkerboard_colouring(L: int) -> np.ndarray:
    """Int64[(L·L,)] (row + col) mod 2 of spin row·L + col."""
    r, c = np.divmod(np.arange(L * L, dtype=np.int64), L)
    return (r + c) % 2


def colour_classes(model: IsingModel) -> list[np.ndarray]:
    """Spin ids of each colour class (increasing ids within a class), classes in colour order."""
    grid = model.grid
    if grid is not None and (not grid[1] or grid[0] % 2 == 0):
        colour = checkerboard_colouring(grid[0])
    else:
        colour = greedy_colouring(model.n, model.edges)
    return [np.flatnonzero(colour == c).astype(np.int64) for c in range(int(colour.max()) + 1)]


def is_proper(classes: list[np.ndarray], edges: np.ndarray, n: int) -> bool:
    """True when the classes partition 0…n−1 and no edge joins two spins of one class."""
    colour = np.full(n, -1, dtype=np.int64)
    for c, ids in enumerate(classes):
        if np.any(colour[ids] >= 0):
            return False
        colour[ids] = c
    if np.any(colour < 0):
        return False
    return bool(np.all(colour[edges[:, 0]] != colour[edges[:, 1]])) if len(edges) else True


def colour_layout(model: IsingModel) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Renumbering that makes each colour class contiguous.

    Returns
    -------
    perm : Int64[(n,)]  perm[k] = original id of the spin stored at internal position k
    slices : list of (start, stop)  internal positions of each class, in colour order
    """
    classes = colour_classes(model)
    perm = np.concatenate(classes) if classes else np.zeros(0, dtype=np.int64)
    bounds = np.cumsum([0] + [len(c) for c in classes])
    slices = [(int(bounds[k]), int(bounds[k + 1])) for k in range(len(classes))]
    return perm.astype(np.int64), slices
