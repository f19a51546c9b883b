"""Round-boundary checkpoints of an NRPT run.

After each completed round rank 0 saves a record of the checkpoint store
(:mod:`hpcfit.io.checkpoint`) named ``nrpt_round_<r:05d>.{npz,json}`` and then removes the
records of earlier rounds, so a complete round is always on disk. The record holds the states of
every replica (replica order), the chain map, the ladder of the next round, the next global scan
counter t, the completed round, the per-round history, the run's configuration and, after the
last round, that round's records (so a finished run is rebuilt without sampling). Its
fingerprint is that of the configuration (target definition, N, n_expl, seed, number of rounds,
a*, first ladder).

Keys are counter-based, so resuming from round k is bitwise equal to not stopping.
Loading never raises: no record resumes nothing, a mismatched or damaged one is ignored with a
warning naming the reason.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hpcfit.errors import AdviceWarning
from hpcfit.io.checkpoint import fingerprint, load_record, save_record

KIND = "nrpt_round"
STEM_PREFIX = "nrpt_round_"
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


def round_stem(directory: str | Path, round_done: int) -> Path:
    """Stem of the checkpoint record after round ``round_done``."""
    return Path(directory) / f"{STEM_PREFIX}{int(round_done):05d}"


def _saved_rounds(directory: Path) -> list[int]:
    """Rounds with a checkpoint json in ``directory``, newest first."""
    rounds = []
    for path in directory.glob(f"{STEM_PREFIX}*.json"):
        digits = path.stem[len(STEM_PREFIX) :]
        if digits.isdigit():
            rounds.append(int(digits))
    return sorted(rounds, reverse=True)


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
    """Save the checkpoint of a completed round (rank 0 only), then remove earlier rounds'."""
    directory = Path(directory)
    fields = {
        "config": config,
        "round_done": int(round_done),
        "t_next": int(t_next),
        "history": history,
        "states": np.ascontiguousarray(states),
        "chains": np.asarray(chains, dtype=np.int32),
        "betas_next": np.asarray(betas_next, dtype=np.float64),
        "records": None if records is None else {k: np.asarray(records[k]) for k in _RECORD_KEYS},
    }
    stem = round_stem(directory, round_done)
    save_record(stem, KIND, config["fingerprint"], fields)
    for older in _saved_rounds(directory):
        if older != round_done:
            round_stem(directory, older).with_suffix(".json").unlink(missing_ok=True)
            round_stem(directory, older).with_suffix(".npz").unlink(missing_ok=True)
    return stem.with_suffix(".json")


def load(directory: str | Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The newest complete round's checkpoint that matches ``config``, or None; a mismatched or
    damaged record is passed over with a warning."""
    directory = Path(directory)
    for saved in _saved_rounds(directory):
        stem = round_stem(directory, saved)
        fields, reason = load_record(stem, KIND, config["fingerprint"], {"round_done": saved})
        if fields is not None:
            return fields
        if reason == "missing":  # removed since it was listed
            continue
        if reason == "fingerprint mismatch":
            reason = f"it was written by another configuration (this run: {config})"
        else:
            reason = f"unreadable ({reason})"
        warnings.warn(
            f"ignoring NRPT checkpoint {stem}.json: {reason}", AdviceWarning, stacklevel=3
        )
    return None
