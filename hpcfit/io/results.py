"""One HDF5 file holding a run's results as a nested mapping (h5py), written atomically.

Mapping conventions of :func:`write_results_h5` (inverted by :func:`read_results_h5`):

* a ``Mapping`` becomes a **group**; its keys become member names (``int`` keys are written as
  ``str(key)``; other key types, empty keys, ``"."`` and keys containing ``"/"`` are rejected);
* a numpy array of numeric or bool dtype (``b i u f c``) becomes a **dataset** with the same dtype
  and shape (bytes kept exactly; arrays over 1 KiB are gzip + shuffle compressed, losslessly);
  a numpy ``str_`` array becomes a variable-length UTF-8 string dataset;
* a ``list``/``tuple`` of numbers or bools that forms a regular, non-empty numeric array (as
  ``numpy.asarray`` sees it) becomes a **dataset** as well, so it reads back as a numpy array;
* a ``str``, ``bool``, ``int`` (within int64), ``float`` scalar, or the numpy scalar of one,
  becomes a native **attribute** of the group named after the key;
* anything else, i.e. ``None``, empty/ragged lists, lists holding ``str``/``None``/dicts, ints
  beyond int64, becomes an attribute named ``key + "_json"`` holding its JSON text (``NaN`` and
  ``Infinity`` are allowed, as Python's ``json`` writes them). A native-attribute key that itself
  ends in ``"_json"`` is JSON-encoded too, so every attribute name ending in ``"_json"`` is JSON
  text for the key without that suffix, and the encoding is unambiguous.

Round trip, ``read_results_h5(write_results_h5(p, tree)) == tree`` up to these documented
changes: arrays come back bitwise equal with their dtype (0-d arrays as 0-d arrays); numeric
lists come back as numpy arrays; numpy scalars come back as Python scalars; tuples in JSON text
come back as lists; ``int`` keys (also inside JSON text) come back as ``str``; string arrays come
back as ``<U`` arrays sized to their longest element. Key order is not kept (h5py lists members
alphabetically).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.io.atomic import write_atomic_path

JSON_SUFFIX = "_json"
COMPRESS_ABOVE_BYTES = 1024
_NUMERIC_KINDS = "biufc"
_INT64 = np.iinfo(np.int64)


def write_results_h5(path: str | Path, tree: Mapping[str, Any]) -> Path:
    """Write the nested mapping ``tree`` to the HDF5 file ``path`` atomically; returns ``path``.

    See the module docstring for how values map to groups, datasets and attributes. Raises
    ``TypeError`` for values that are neither arrays, mappings nor JSON-serialisable and
    ``ValueError`` for invalid keys; the error names the offending key path.
    """
    import h5py

    if not isinstance(tree, Mapping):
        raise TypeError(f"tree must be a mapping, got {type(tree).__name__}")

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as fh:
            _write_group(fh, tree, "")

    return write_atomic_path(path, write)


def read_results_h5(path: str | Path) -> dict[str, Any]:
    """Read a file written by :func:`write_results_h5` back into nested dicts (module docstring)."""
    import h5py

    with h5py.File(path, "r") as fh:
        return _read_group(fh)


def _key(key: Any, where: str) -> str:
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise TypeError(f"{where or '/'}: keys must be str or int, got {key!r}")
    name = str(key)
    if name in ("", ".") or "/" in name:
        raise ValueError(f"{where or '/'}: invalid key {name!r} (empty, '.' or containing '/')")
    return name


def _native_scalar(value: Any) -> str | bool | int | float | None:
    """The value as a native attribute (str/bool/int64/float), or None if it needs JSON."""
    if isinstance(value, np.generic) and value.dtype.kind in "biufU":
        value = value.item()
    if isinstance(value, str | bool | float):
        return value
    if isinstance(value, int) and _INT64.min <= value <= _INT64.max:
        return value
    return None


def _numeric_list(value: list | tuple) -> np.ndarray | None:
    """A regular, non-empty numeric array from a list of numbers, else None."""
    if len(value) == 0:
        return None
    try:
        arr = np.asarray(value)
    except (ValueError, OverflowError, TypeError):
        return None
    if arr.dtype.kind not in _NUMERIC_KINDS or arr.size == 0:
        return None
    return arr


def _write_dataset(group: Any, name: str, arr: np.ndarray, where: str) -> None:
    import h5py

    if arr.dtype.kind == "U":
        data = np.asarray(arr, dtype=object)
        group.create_dataset(name, data=data, dtype=h5py.string_dtype("utf-8"))
        return
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"{where}: unsupported array dtype {arr.dtype} (numeric, bool or str only)")
    kwargs: dict[str, Any] = {}
    if arr.ndim > 0 and arr.nbytes > COMPRESS_ABOVE_BYTES:
        kwargs = {"compression": "gzip", "shuffle": True}
    group.create_dataset(name, data=arr, **kwargs)


def _write_group(group: Any, tree: Mapping[Any, Any], where: str) -> None:
    for raw_key, value in tree.items():
        name = _key(raw_key, where)
        here = f"{where}/{name}"
        if isinstance(value, Mapping):
            _write_group(group.create_group(name), value, here)
            continue
        if isinstance(value, np.ndarray):
            _write_dataset(group, name, value, here)
            continue
        if isinstance(value, list | tuple):
            arr = _numeric_list(value)
            if arr is not None:
                _write_dataset(group, name, arr, here)
                continue
        native = _native_scalar(value)
        if native is not None and not name.endswith(JSON_SUFFIX):
            group.attrs[name] = native
            continue
        try:
            text = json.dumps(value, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{here}: cannot store {type(value).__name__} (not an array, mapping, scalar "
                f"or JSON-serialisable value): {exc}"
            ) from exc
        group.attrs[name + JSON_SUFFIX] = text


def _read_group(group: Any) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    for name, member in group.items():
        if isinstance(member, h5py.Group):
            out[name] = _read_group(member)
        elif h5py.check_string_dtype(member.dtype) is not None:
            out[name] = np.asarray(member.asstr()[()], dtype=str)
        else:
            out[name] = np.asarray(member[()])
    for name, value in group.attrs.items():
        if name.endswith(JSON_SUFFIX):
            out[name[: -len(JSON_SUFFIX)]] = json.loads(value)
        elif isinstance(value, np.generic):
            out[name] = value.item()
        elif isinstance(value, bytes):
            out[name] = value.decode()
        else:
            out[name] = value
    return out
