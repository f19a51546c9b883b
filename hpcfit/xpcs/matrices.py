"""Matrix sources: read one selected two-time matrix at a time, cut to a frame window.

A :class:`~hpcfit.xpcs.file_index.FileIndex` holds one of these; only the matrices that the
selection keeps are ever read (HDF5 datasets, rows of an NPZ member, or arrays in memory).
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hpcfit.errors import DataError


class MatrixReader(Protocol):
    def read(self, position: int, frames: slice) -> np.ndarray:
        """Matrix ``position`` restricted to ``frames`` × ``frames`` (the stored dtype)."""
        ...


class MatrixSource(Protocol):
    def open(self) -> contextlib.AbstractContextManager[MatrixReader]: ...


@dataclass(frozen=True)
class MemoryMatrices:
    """Matrices already in memory, (n, N, N)."""

    c2: np.ndarray

    @contextlib.contextmanager
    def open(self) -> Iterator[MatrixReader]:
        yield self

    def read(self, position: int, frames: slice) -> np.ndarray:
        return self.c2[position, frames, frames]


@dataclass(frozen=True)
class H5Matrices:
    """Matrices stored as HDF5 datasets: ``refs[k] = (dataset path, index)``; a 2-D dataset is
    one matrix (index None), a 3-D dataset a stack (index k on its first axis, or
    ``("last", k)`` on its last)."""

    path: str
    refs: tuple[tuple[str, Any], ...]

    @contextlib.contextmanager
    def open(self) -> Iterator[MatrixReader]:
        import h5py

        try:
            h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        with h5:
            yield _H5Reader(h5, self)


@dataclass(frozen=True)
class _H5Reader:
    h5: Any
    source: H5Matrices

    def read(self, position: int, frames: slice) -> np.ndarray:
        name, index = self.source.refs[position]
        if index is None:
            key: tuple[Any, ...] = (frames, frames)
        elif isinstance(index, tuple):  # ("last", k): a stack with the matrix index last
            key = (frames, frames, index[1])
        else:
            key = (index, frames, frames)
        try:
            return np.asarray(self.h5[name][key])
        except (OSError, TypeError, ValueError) as exc:
            raise DataError(f"{self.source.path}: {name}: cannot be read ({exc})") from None


@dataclass(frozen=True)
class NpzMatrices:
    """One array of an NPZ archive, (n, N, N) or (N, N), read row by row from its ``.npy``
    member (no full load): only the selected matrices and frames are ever in memory."""

    path: str
    member: str
    shape: tuple[int, ...]
    dtype: str
    offset: int  # byte offset of the data in the member

    @contextlib.contextmanager
    def open(self) -> Iterator[MatrixReader]:
        with zipfile.ZipFile(self.path) as zf, zf.open(self.member) as fp:
            yield _NpzReader(fp, self)


@dataclass(frozen=True)
class _NpzReader:
    fp: Any
    source: NpzMatrices

    def read(self, position: int, frames: slice) -> np.ndarray:
        n = self.source.shape[-1]
        dtype = np.dtype(self.source.dtype)
        rows = range(n)[frames]
        if not rows:
            return np.empty((0, 0), dtype)
        lo, hi = rows[0], rows[-1]  # a positive-step window: lo ≤ hi
        out = np.empty((len(rows), len(rows)), dtype)
        for k, r in enumerate(rows):
            at = self.source.offset + ((position * n + r) * n + lo) * dtype.itemsize
            self.fp.seek(at)
            buf = self.fp.read((hi - lo + 1) * dtype.itemsize)
            out[k] = np.frombuffer(buf, dtype)[:: frames.step or 1]
        return out


def npz_member_meta(zf: zipfile.ZipFile, member: str, src: str, name: str) -> NpzMatrices:
    """Shape, dtype and data offset of an ``.npy`` member, from its header only."""
    with zf.open(member) as fp:
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        except ValueError as exc:
            raise DataError(f"{src}: {name}: not a NumPy array member ({exc})") from None
        offset = fp.tell()
    if dtype.hasobject:
        raise DataError(
            f"{src}: {name}: holds Python objects (needs pickle); expected a numeric array"
        )
    if dtype.kind not in "iuf":
        raise DataError(
            f"{src}: {name}: expected real numeric correlation values, got dtype {dtype} "
            f"with shape {shape}"
        )
    if fortran and len(shape) > 1:
        raise DataError(f"{src}: {name}: stored in Fortran order; save it C-ordered")
    return NpzMatrices(src, member, tuple(int(d) for d in shape), dtype.str, offset)


@dataclass(frozen=True)
class ShapeOnly:
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)
