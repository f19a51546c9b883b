"""Progress of the shard phase on rank 0's console.

Each rank posts a small note when it finishes a shard (``progress_note``); rank 0 prints one
line per note (:class:`Progress`), its own directly and the other ranks' from a background
thread (:class:`ProgressMonitor`) that polls the communicator, so no collective is involved.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hpcfit.cmc.policy import ShardResult
from hpcfit.parallel.comm import Comm

log = logging.getLogger("hpcfit")


@dataclass
class Progress:
    """One line per finished shard on rank 0: id, rank, wall time, worst R-hat, divergences,
    and an ETA from the mean shard time so far (finished shards / ranks in flight)."""

    n_shards: int
    n_ranks: int
    done: int = 0
    t0: float = field(default_factory=time.perf_counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, note: dict[str, Any]) -> None:
        with self.lock:
            self.done += 1
            elapsed = time.perf_counter() - self.t0
            left = self.n_shards - self.done
            eta = elapsed / self.done * left if self.done else float("nan")
            log.info(
                "shard %d done on rank %d (%d/%d): %s, %.1f s, max R-hat %s, %s divergent, "
                "leapfrog steps per iteration %s, ETA %.0f s",
                note["shard_id"],
                note["rank"],
                self.done,
                self.n_shards,
                note["status"],
                note["wall_s"],
                note["max_rhat"],
                note["n_divergent"],
                note["steps"],
                eta,
            )


def progress_note(result: ShardResult, rank: int, reused: bool) -> dict[str, Any]:
    diag = result.diagnostics or {}
    rhat = [r for r in diag.get("rhat", []) if r is not None]
    status = result.status + (" (checkpoint)" if reused else "")
    return {
        "shard_id": result.shard_id,
        "rank": rank,
        "status": status,
        "wall_s": result.wall_s,
        "max_rhat": f"{max(rhat):.4f}" if rhat else "n/a",
        "n_divergent": diag.get("n_divergent", "n/a"),
        "steps": _steps_text(result),
    }


def _steps_text(result: ShardResult) -> str:
    """Mean/median leapfrog steps, tree-depth hits, step size and compile time of the last
    attempt ("no compile": it reused the rank's compiled sampler)."""
    last = result.attempts[-1] if result.attempts else {}
    if last.get("mean_steps") is None:
        return "n/a"
    sizes = last.get("step_size") or []
    size = f", step size {min(sizes):.3g}–{max(sizes):.3g}" if sizes else ""
    n_compiles = last.get("n_compiles")
    compiled = ""
    if n_compiles is not None:
        compiled = f"; compiled {last['compile_s']:.1f} s" if n_compiles else "; no compile"
    return (
        f"mean {last['mean_steps']:.1f} median {last['median_steps']:.0f} "
        f"({last['tree_depth_hits']} tree-depth hits{size}{compiled})"
    )


class ProgressMonitor:
    """Rank 0's background thread printing the notes other ranks post as they finish shards."""

    def __init__(self, comm: Comm, progress: Progress, expected: int) -> None:
        self._comm, self._progress, self._left = comm, progress, expected
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpcfit-progress", daemon=True)

    def __enter__(self) -> ProgressMonitor:
        if self._left:
            self._thread.start()
        return self

    def _run(self) -> None:
        while self._left > 0 and not self._stop.is_set():
            for note in self._comm.poll():
                self._progress.report(note)
                self._left -= 1
            self._stop.wait(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)  # every note was posted before the gather
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for note in self._comm.poll():  # anything still queued
            self._progress.report(note)
