"""hpcfit's one checkpoint store: atomic, fingerprinted records of finished work.

Every checkpoint of every workload is a record saved by :func:`save_record` and read back by
:func:`load_record`: CMC shards and the NLSQ warm start (here), NRPT rounds
(:mod:`hpcfit.nrpt.checkpoint`) and Kuramoto member chunks (:mod:`hpcfit.io.kuramoto_out`).
A record is a pair of files with one stem:

* ``<stem>.npz``: the arrays (shard draws; the warm start's vectors, covariance and start
  points; replica states), one npz entry per array, named by its place in the record
  (``draws_u``, ``starts.0.theta``, ``history.3.betas``, ...);
* ``<name>.json``: ``format`` (:data:`FORMAT`), ``kind``, ``fingerprint`` and every other field
  of the record. An array appears there as ``{"$array": npz entry, "dtype", "shape",
  "sha256"}``, a non-finite float as ``{"$float": "nan" | "inf" | "-inf"}`` and a tuple as
  ``{"$tuple": [...]}``, so the file is strict JSON and the record round-trips exactly.

Both are written atomically (``hpcfit.io.atomic``), the npz first: the json marks completion, and
an existing json is removed before a new npz is written, so a crash leaves either no json or a
complete pair. Shards live in ``shard_<s:05d>.{npz,json}``, the warm start in
``checkpoint.{npz,json}`` of its directory. A record that is replaced as work goes on (NRPT's
round) is written under a new stem and the old one removed after, so a complete one is always
on disk.

Loading never raises for a bad file: it returns ``(None, reason)``, "missing" when there is no
json, "fingerprint mismatch" when the run's inputs differ, and "corrupt: ..." otherwise; the
caller warns and recomputes. The fingerprint document (inputs of the computation) is assembled
by the caller; :func:`fingerprint` hashes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from hpcfit.io.atomic import write_json, write_npz
from hpcfit.records import NLSQResult, StartRecord, WarmStartFlag

if TYPE_CHECKING:
    from hpcfit.cmc.policy import ShardResult

FORMAT = 1  # bump when the file layout changes; a checkpoint of another format is not used

SHARD_KIND = "cmc_shard"
WARM_START_KIND = "nlsq_warm_start"
_HEADER = ("format", "kind", "fingerprint")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_NLSQ_ARRAYS = (
    "theta", "cov", "sigma_k", "params", "contrast", "offset", "sigma_hat", "residual_rms",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# fingerprint


def fingerprint(doc: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``doc``.

    Canonical JSON: keys sorted, separators ``(",", ":")``, ASCII; floats by ``repr`` (exact, so
    1 ulp or the sign of zero changes the hash; NaN, Infinity and -Infinity as JSON's bare
    tokens, distinct from any string); ints stay ints (``1`` and ``1.0`` differ); numpy scalars
    become Python scalars, tuples lists, enums their name, paths strings, dataclasses the dict
    of their fields; a numpy array becomes ``{"dtype", "shape", "sha256"}`` with the hash of its
    C-contiguous bytes, ``bytes`` ``{"bytes_sha256": ...}``. Mapping keys must be strings;
    anything else raises TypeError.
    """
    text = json.dumps(
        _canonical(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=True
    )
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _canonical(obj: Any) -> Any:
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, Enum):
        return obj.name
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return _array_id(obj)
    if isinstance(obj, bytes | bytearray):
        return {"bytes_sha256": hashlib.sha256(obj).hexdigest()}
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {_key(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_canonical(v) for v in obj]
    raise TypeError(f"cannot fingerprint a {type(obj).__name__}: {obj!r}")


def _key(k: Any) -> str:
    if not isinstance(k, str):
        raise TypeError(f"mapping keys must be strings, got {k!r}")
    return k


def _array_id(a: np.ndarray) -> dict[str, Any]:
    """dtype (``dtype.str``, byte order included), shape and sha256 of the C-contiguous bytes."""
    if a.dtype.hasobject:
        raise TypeError(f"object arrays are not supported (dtype {a.dtype})")
    digest = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
    return {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": digest}


# --------------------------------------------------------------------------------------------
# shards


def shard_paths(directory: Path, shard_id: int) -> tuple[Path, Path]:
    """(npz, json) paths of shard ``shard_id``'s checkpoint: ``shard_<s:05d>.{npz,json}``."""
    if isinstance(shard_id, bool) or not isinstance(shard_id, int | np.integer) or shard_id < 0:
        raise ValueError(f"shard_id must be an integer >= 0, got {shard_id!r}")
    stem = Path(directory) / f"shard_{int(shard_id):05d}"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def save_record(stem: Path, kind: str, fp: str, fields: dict[str, Any]) -> None:
    """Save ``fields`` (JSON values, NumPy arrays, tuples; nested) as a record of ``kind``
    under fingerprint ``fp`` at ``<stem>.npz`` and ``<stem>.json``: the npz, then the json."""
    stem = Path(stem)
    _save(stem.with_suffix(".npz"), stem.with_suffix(".json"), kind, fp, fields)


def load_record(
    stem: Path, kind: str, fp: str, ids: dict[str, Any] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The fields of the complete record of ``kind`` with fingerprint ``fp`` at ``stem`` (and
    integer fields equal to ``ids``) and "", or ``(None, reason)``: "missing", "fingerprint
    mismatch" or "corrupt: ...". Never raises for a bad file."""
    stem = Path(stem)
    npz_path, json_path = stem.with_suffix(".npz"), stem.with_suffix(".json")
    return _load(npz_path, json_path, kind, fp, ids or {}, lambda fields: fields)


def save_shard(directory: Path, result: ShardResult, fp: str) -> None:
    """Checkpoint a finished shard (any status) under fingerprint ``fp``: npz, then json."""
    npz_path, json_path = shard_paths(directory, result.shard_id)
    _save(npz_path, json_path, SHARD_KIND, fp, _fields(result))


def load_shard(directory: Path, shard_id: int, fp: str) -> tuple[ShardResult | None, str]:
    """The checkpointed shard and "" if a complete one with fingerprint ``fp`` exists.

    Otherwise ``(None, reason)``: "missing" (no json: never written or interrupted), "fingerprint
    mismatch", or "corrupt: ..." (unreadable or inconsistent files). Never raises for bad files.
    """
    npz_path, json_path = shard_paths(directory, shard_id)
    return _load(npz_path, json_path, SHARD_KIND, fp, {"shard_id": int(shard_id)}, _shard_from)


def _shard_from(f: dict[str, Any]) -> ShardResult:
    from hpcfit.cmc.policy import STATUSES, ShardResult

    r = ShardResult(**f)
    _require(_is_int(r.shard_id), f"shard_id {r.shard_id!r} is not an integer")
    _require(r.status in STATUSES, f"unknown status {r.status!r}")
    _require(isinstance(r.attempts, list), "attempts is not a list")
    _require(all(isinstance(a, dict) for a in r.attempts), "an attempt is not an object")
    _require(r.diagnostics is None or isinstance(r.diagnostics, dict), "bad diagnostics")
    _require(_is_number(r.wall_s), f"wall_s {r.wall_s!r} is not a number")
    for name in ("draws_u", "draws_theta"):  # arrays exactly when the shard is ok
        d = getattr(r, name)
        ok = isinstance(d, np.ndarray) and d.ndim == 3 if r.status == "ok" else d is None
        _require(ok, f"{name} does not fit status {r.status!r}")
    return r


# --------------------------------------------------------------------------------------------
# warm start


def warm_start_paths(directory: Path) -> tuple[Path, Path]:
    """(npz, json) paths of the warm-start checkpoint: ``checkpoint.{npz,json}``."""
    stem = Path(directory) / "checkpoint"
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def save_warm_start(directory: Path, result: NLSQResult, fp: str) -> None:
    """Checkpoint the NLSQ warm start under fingerprint ``fp``: npz, then json."""
    f = _fields(result)
    f["flags"] = [flag.name for flag in result.flags]
    f["starts"] = [_fields(s) for s in result.starts]
    _save(*warm_start_paths(directory), WARM_START_KIND, fp, f)


def load_warm_start(directory: Path, fp: str) -> tuple[NLSQResult | None, str]:
    """The checkpointed warm start and "" if a complete one with fingerprint ``fp`` exists.

    Otherwise ``(None, reason)`` as for :func:`load_shard`. Never raises for bad files.
    """
    return _load(*warm_start_paths(directory), WARM_START_KIND, fp, {}, _warm_start_from)


def _warm_start_from(f: dict[str, Any]) -> NLSQResult:
    f["flags"] = tuple(WarmStartFlag[name] for name in f["flags"])
    f["starts"] = tuple(StartRecord(**s) for s in f["starts"])
    r = NLSQResult(**f)
    for name in _NLSQ_ARRAYS:
        _require(isinstance(getattr(r, name), np.ndarray), f"{name} is not an array")
    for s in r.starts:
        _require(isinstance(s.start, np.ndarray) and isinstance(s.theta, np.ndarray), "bad start")
    _require(isinstance(r.extra, dict), "extra is not an object")
    return r


# --------------------------------------------------------------------------------------------
# files


class _Corrupt(Exception):
    """A checkpoint that cannot be used; the message is the reason."""


def _require(ok: bool, reason: str) -> None:
    if not ok:
        raise _Corrupt(reason)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields by name (shallow: arrays are not copied)."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _save(npz_path: Path, json_path: Path, kind: str, fp: str, fields: dict[str, Any]) -> None:
    arrays: dict[str, np.ndarray] = {}
    body = _encode(fields, arrays, ())  # before touching the files: a bad record changes nothing
    json_path.unlink(missing_ok=True)  # no json = not complete, while the npz is rewritten
    write_npz(npz_path, **arrays)
    write_json(json_path, {"format": FORMAT, "kind": kind, "fingerprint": fp, **body})


def _load(
    npz_path: Path,
    json_path: Path,
    kind: str,
    fp: str,
    ids: dict[str, Any],
    build: Callable[[dict[str, Any]], Any],
) -> tuple[Any, str]:
    if not json_path.is_file():
        return None, "missing"
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None, f"corrupt: json: {exc}"
    try:
        _require(isinstance(doc, dict), "json is not an object")
        _require(doc.get("kind") == kind, f"kind {doc.get('kind')!r}, expected {kind!r}")
        version = doc.get("format")
        _require(_is_int(version) and version == FORMAT, f"format {version!r}, expected {FORMAT}")
        for k, v in ids.items():
            _require(_is_int(doc.get(k)) and doc[k] == v, f"{k} {doc.get(k)!r}, expected {v!r}")
        if doc.get("fingerprint") != fp:
            return None, "fingerprint mismatch"
        _require(npz_path.is_file(), f"{npz_path.name} is missing")
        # an open file object: np.load leaks the handle it opens when the zip is damaged
        with open(npz_path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            fields = _decode({k: v for k, v in doc.items() if k not in _HEADER}, npz)
        return build(fields), ""
    except _Corrupt as exc:
        return None, f"corrupt: {exc}"
    except Exception as exc:  # whatever a damaged file raises is a reason to recompute
        return None, f"corrupt: {type(exc).__name__}: {exc}"


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: tuple[str, ...]) -> Any:
    """Strict-JSON form of ``obj``; arrays go to ``arrays`` under their dotted path."""
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return x if math.isfinite(x) else {"$float": repr(x)}
    if isinstance(obj, np.ndarray):
        name = ".".join(where)
        if not name or name in arrays:
            raise ValueError(f"cannot name the array at {where!r} uniquely")
        arrays[name] = obj
        return {"$array": name} | _array_id(obj)
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(v, arrays, (*where, str(i))) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, arrays, (*where, str(i))) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, str) or k.startswith("$"):
                raise TypeError(f"keys must be strings not starting with '$', got {k!r}")
        return {k: _encode(v, arrays, (*where, k)) for k, v in obj.items()}
    raise TypeError(f"cannot checkpoint a {type(obj).__name__} at {'.'.join(where)!r}")


def _decode(obj: Any, npz: Any) -> Any:
    """Inverse of :func:`_encode`; arrays are read from ``npz`` and checked against the json."""
    if isinstance(obj, list):
        return [_decode(v, npz) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "$float" in obj:
        _require(obj["$float"] in _NONFINITE, f"bad non-finite float {obj['$float']!r}")
        return _NONFINITE[obj["$float"]]
    if "$tuple" in obj:
        _require(isinstance(obj["$tuple"], list), "bad tuple")
        return tuple(_decode(v, npz) for v in obj["$tuple"])
    if "$array" in obj:
        name = obj["$array"]
        _require(name in npz.files, f"array {name!r} is not in the npz")
        a = npz[name]
        got = _array_id(a)
        for k in ("dtype", "shape"):
            _require(got[k] == obj.get(k), f"array {name!r}: {k} {got[k]!r}, json {obj.get(k)!r}")
        _require(got["sha256"] == obj.get("sha256"), f"array {name!r}: sha256 differs from json")
        return a
    return {k: _decode(v, npz) for k, v in obj.items()}
