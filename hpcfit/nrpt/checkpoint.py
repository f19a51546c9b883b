"""Round-boundary checkpoints of an NRPT run.

After each completed round rank 0 writes ``<dir>/nrpt_checkpoint.npz`` in one atomic write
(``hpcfit.io.atomic.write_npz``: temporary file, fsync, ``os.replace``), so the file on disk is
always one complete round. It holds the states of every replica (replica order), the chain map,
the ladder of the next round, the next global scan counter t, the completed round, the per-round
history and, after the last round, that round's records (so a finished run is rebuilt without
sampling). A JSON header inside the archive records the format, the fingerprint of the run's
configuration (target definition, N, n_expl, seed, number of rounds, a*, first ladder),
that configuration and the history, in the record codec of :mod:`hpcfit.io.checkpoint` (its
arrays are further entries of the archive, checked by sha256 when read).

Keys are counter-based, so resuming from round k is bitwise equal to not stopping.
Loading never raises: a missing file resumes nothing, a mismatched or unreadable one is ignored
with a warning naming the reason.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.errors import AdviceWarning
from hpcfit.io.atomic import write_npz
from hpcfit.io.checkpoint import decode_record, encode_record, fingerprint

FORMAT = 2  # 2: the history's arrays are npz entries (io.checkpoint's record codec)
FILENAME = "nrpt_checkpoint.npz"
_RECORD_KEYS = ("chain", "e1", "v", "site_sum", "acc")


def run_config(
    target_doc: dict[str, Any],
    n_chains: int,
    n_expl: int,
    seed: int,
    n_rounds: int,
    target_acceptance: float = 0.5,
    first_ladder: np.ndarray | None = None,
) -> dict[str, Any]:
    """The configuration a checkpoint must match, with its fingerprint."""
    ladder = None if first_ladder is None else [float(b) for b in first_ladder]
    doc = {
        "target": fingerprint(target_doc),
        "n_chains": int(n_chains),
        "n_expl": int(n_expl),
        "seed": int(seed),
        "n_rounds": int(n_rounds),
        "target_acceptance": float(target_acceptance),
        "first_ladder": ladder,
    }
    return {**doc, "fingerprint": fingerprint(doc)}


def save(
    directory: str | Path,
    config: dict[str, Any],
    *,
    round_done: int,
    t_next: int,
    states: np.ndarray,
    chains: np.ndarray,
    betas_next: np.ndarray,
    history: list[dict[str, Any]],
    records: dict[str, np.ndarray] | None,
) -> Path:
    """Write the checkpoint of a completed round atomically (rank 0 only)."""
    header, arrays = encode_record(
        {
            "format": FORMAT,
            "config": config,
            "round_done": int(round_done),
            "t_next": int(t_next),
            "history": history,
            "has_records": records is not None,
        }
    )  # the history's arrays become npz entries named by their place ("history.0.betas")
    arrays |= {
        "header": np.asarray(json.dumps(header, allow_nan=False)),
        "states": np.ascontiguousarray(states),
        "chains": np.asarray(chains, dtype=np.int32),
        "betas_next": np.asarray(betas_next, dtype=np.float64),
    }
    if records is not None:
        arrays.update({f"records_{k}": np.asarray(records[k]) for k in _RECORD_KEYS})
    return write_npz(Path(directory) / FILENAME, **arrays)


def load(directory: str | Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The last complete round's checkpoint if it matches ``config``; None (with a warning for a
    mismatched or damaged file) otherwise."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            header = json.loads(str(npz["header"]))
            if header.get("format") != FORMAT:
                reason = f"format {header.get('format')!r}, expected {FORMAT}"
            elif header.get("config", {}).get("fingerprint") != config["fingerprint"]:
                reason = (
                    f"it was written by another configuration ({header.get('config')}; "
                    f"this run: {config})"
                )
            else:
                out = {
                    "round_done": int(header["round_done"]),
                    "t_next": int(header["t_next"]),
                    "history": decode_record({"history": header["history"]}, npz)["history"],
                    "states": npz["states"],
                    "chains": npz["chains"],
                    "betas_next": npz["betas_next"],
                    "records": None,
                }
                if header.get("has_records"):
                    out["records"] = {k: npz[f"records_{k}"] for k in _RECORD_KEYS}
                return out
    except Exception as exc:  # a damaged file is a reason to start afresh, never to stop
        reason = f"unreadable ({type(exc).__name__}: {exc})"
    warnings.warn(f"ignoring NRPT checkpoint {path}: {reason}", AdviceWarning, stacklevel=3)
    return None
