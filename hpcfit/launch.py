"""Launcher mode: start the ranks of one job and return their exit status.

``hpcfit mpi.ranks=R`` composes and validates the config and, for R > 1, writes ``config.yaml``
(resolved, for people) and ``overrides.yaml`` (for the ranks, which compose the same config from
it) into the run directory; then it runs

* R = 1: the job in this process (no MPI);
* otherwise ``mpiexec -n R python -m mpi4py -m hpcfit.rank <run_dir>``, with the ``mpiexec`` next
  to this interpreter first (the ``mpich`` wheel's), or inside a Slurm allocation
  ``srun --mpi=pmi2 -n R -c C --cpu-bind=cores python -m mpi4py -m hpcfit.rank <run_dir>``.

SIGINT, SIGTERM and SIGUSR1 are forwarded to the child; the exit status is the child's (128 + n
if a signal n killed it). The child's output passes through this process, which keeps its last
lines: when the job fails, the MPI launcher's own report says which rank ended first
(:mod:`hpcfit.parallel.failures`). No JAX import here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from hpcfit.config import Config, Launcher, NrptJob, NrptModel, XpcsJob, cores_per_rank
from hpcfit.errors import ConfigError
from hpcfit.pipelines.status import EXIT_INPUT

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
MPI_ABORT_NOTE = re.compile(
    r"^Abort\(\d+\) on node \d+ \(rank \d+ in comm \d+\): application called MPI_Abort"
)
"""MPICH's note of an ``MPI_Abort`` call: hpcfit (or mpi4py) has printed the reason already, so
the note is kept for the crash report but not shown."""


def choose_launcher(launcher: Launcher, env: Mapping[str, str]) -> Launcher:
    """``auto`` → srun inside a Slurm allocation (``SLURM_JOB_ID`` set, srun on PATH), else
    mpiexec; an explicit choice is kept."""
    if launcher is not Launcher.auto:
        return launcher
    if env.get("SLURM_JOB_ID") and shutil.which("srun", path=env.get("PATH")):
        return Launcher.srun
    return Launcher.mpiexec


def mpiexec_path(python: str = sys.executable) -> str:
    """The ``mpiexec`` beside ``python`` (the venv's mpich wheel), else the one on PATH."""
    beside = Path(python).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("mpiexec")
    if found is None:
        raise ConfigError(
            "mpi.launcher: no mpiexec next to the interpreter or on PATH; "
            "install hpcfit with its mpich dependency or set mpi.launcher=srun"
        )
    return found


def rank_argv(
    launcher: Launcher,
    ranks: int,
    cores_per_rank: int,
    run_dir: Path,
    python: str = sys.executable,
) -> list[str]:
    """The command that starts ``ranks`` workers on ``run_dir``."""
    worker = [python, "-m", "mpi4py", "-m", "hpcfit.rank", str(run_dir)]
    if launcher is Launcher.srun:
        return [
            "srun",
            "--mpi=pmi2",
            "-n",
            str(ranks),
            "-c",
            str(cores_per_rank),
            "--cpu-bind=cores",
            *worker,
        ]
    if launcher is Launcher.mpiexec:
        return [mpiexec_path(python), "-n", str(ranks), *worker]
    raise ConfigError(f"mpi.launcher: cannot start {ranks} ranks with launcher {launcher.value}")


def write_run_inputs(run_dir: Path, resolved: dict, overrides: list[str]) -> None:
    """``config.yaml`` (the resolved config) and ``overrides.yaml`` (what the ranks compose)."""
    from omegaconf import OmegaConf

    from hpcfit.io.atomic import write_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    text = OmegaConf.to_yaml(OmegaConf.create(resolved))
    write_atomic(run_dir / "config.yaml", lambda fh: fh.write(text.encode()))
    listing = OmegaConf.to_yaml(OmegaConf.create({"overrides": list(overrides)}))
    write_atomic(run_dir / "overrides.yaml", lambda fh: fh.write(listing.encode()))


def spawn(
    argv: list[str], env: Mapping[str, str] | None = None, tail: deque[str] | None = None
) -> int:
    """Run ``argv``, forwarding SIGINT/SIGTERM/SIGUSR1; returns its exit status (128 + n when
    signal n ended it). With ``tail``, the child's stdout and stderr are copied line by line to
    this process's and their last lines kept in ``tail``."""
    sys.stdout.flush()
    sys.stderr.flush()
    pipe = subprocess.PIPE if tail is not None else None
    proc = subprocess.Popen(argv, env=None if env is None else dict(env), stdout=pipe, stderr=pipe)
    copies = []
    if tail is not None:
        for source, sink in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr)):
            copy = threading.Thread(target=_copy_lines, args=(source, sink, tail), daemon=True)
            copy.start()
            copies.append(copy)

    def forward(signum: int, _frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        code = proc.wait()
        for copy in copies:
            copy.join(timeout=10.0)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 128 - code if code < 0 else code


def _copy_lines(source: IO[bytes] | None, sink: IO[str], tail: deque[str]) -> None:
    """Copy ``source`` to ``sink`` as it comes, one line at a time, keeping each in ``tail``."""
    assert source is not None
    out = getattr(sink, "buffer", None)
    with source:
        for raw in iter(source.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            tail.append(line)
            if MPI_ABORT_NOTE.match(line):
                continue
            if out is not None:
                out.write(raw)
            else:
                sink.write(raw.decode(errors="replace"))
            sink.flush()


def launch(cfg: Config, run_dir: Path, resolved: dict, overrides: list[str]) -> int:
    """Start the job's ranks for ``cfg`` in ``run_dir``; returns the exit status.

    This process owns the run directory while the job runs (:func:`hpcfit.io.run_dir.claim`)
    and gives ``run.json`` its final state when the job ends without one (ranks that died, a
    signal).
    """
    from hpcfit.io.run_dir import OWNER_ENV, claim

    ranks = cfg.mpi.ranks or 1
    plan_only = isinstance(cfg, XpcsJob) and cfg.cmc.plan_only
    if ranks == 1 or plan_only:  # a plan for R ranks is made by one process
        from hpcfit import rank
        from hpcfit.parallel.comm import SerialComm

        owner = claim(run_dir)
        try:
            with _signals_end_the_run(run_dir):
                return rank.run(cfg, run_dir, resolved, SerialComm(), owned=True)
        finally:
            owner.release()
    require_capacity(ranks, cfg.mpi.oversubscribe, os.environ)
    require_inputs(cfg)  # a missing or bad input file ends the job here, before any rank starts
    owner = claim(run_dir)
    try:
        write_run_inputs(run_dir, resolved, overrides)
        launcher = choose_launcher(cfg.mpi.launcher, os.environ)
        cores = cores_per_rank(cfg)
        argv = rank_argv(launcher, ranks, cores, run_dir)
        print(f"hpcfit: starting {ranks} ranks: {' '.join(argv)}", flush=True)
        env = {**os.environ, OWNER_ENV: str(run_dir)}
        if launcher is Launcher.srun:
            env["SRUN_CPUS_PER_TASK"] = str(cores)  # Slurm 22.05–23.02 srun does not inherit -c
        tail: deque[str] = deque(maxlen=200)
        code = spawn(argv, env, tail)
        if code != 0:
            from hpcfit.io.run_dir import read_record
            from hpcfit.parallel.failures import first_failure, rank_pids

            if code == EXIT_INPUT and read_record(run_dir).get("exit_code") == EXIT_INPUT:
                return code  # rank 0 printed the one-line error and recorded it
            first = first_failure(tail, rank_pids(run_dir))
            lost = ([first] if first else []) + unfinished_work(run_dir)
            for line in lost:
                print(f"hpcfit: {line}", file=sys.stderr, flush=True)
            message = f"the ranks exited with status {code}; logs: {run_dir}/rank-*.log"
            print(f"hpcfit: {message}", file=sys.stderr, flush=True)
            _record_end(run_dir, code, "; ".join([*lost, message]))
            code = _recorded_exit(run_dir, code)
        return code
    finally:
        owner.release()


def _recorded_exit(run_dir: Path, code: int) -> int:
    """The exit status ``run.json`` holds when a rank wrote its final state before stopping the
    job (an abort under ``on_shard_failure=abort``, a shard time limit): the launcher then exits
    with that, whatever signal the abort left the ranks with; else ``code``."""
    from hpcfit.io.run_dir import read_record

    recorded = read_record(run_dir).get("exit_code")
    return recorded if isinstance(recorded, int) and recorded != 0 else code


def _record_end(run_dir: Path, code: int, message: str) -> None:
    """``run.json``'s final state when the ranks ended without writing one."""
    from hpcfit.io.run_dir import mark_ended

    mark_ended(run_dir, "killed" if code >= 128 else "failed", code, message)


@contextlib.contextmanager
def _signals_end_the_run(run_dir: Path):
    """SIGTERM and SIGINT end a one-process run with 128 + n and a final ``run.json``."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if code >= 128:
            name = signal.Signals(code - 128).name
            print(f"hpcfit: stopped by {name}; finished work is checkpointed", file=sys.stderr)
            _record_end(run_dir, code, f"stopped by {name}")
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def rank_capacity(env: Mapping[str, str]) -> tuple[int, str]:
    """How many ranks this launch may start: the Slurm allocation's tasks inside one, else the
    CPU cores this process may run on; with what that number is, for messages."""
    tasks = env.get("SLURM_NTASKS") if env.get("SLURM_JOB_ID") else None
    if tasks and tasks.isdigit():
        return int(tasks), "tasks of this Slurm allocation (SLURM_NTASKS)"
    return len(os.sched_getaffinity(0)), "CPU cores this process may use"


def require_capacity(ranks: int, oversubscribe: bool, env: Mapping[str, str]) -> None:
    """ConfigError when ``ranks`` exceed :func:`rank_capacity` and oversubscribing is not asked
    for: a thousand ranks on two cores thrash the machine for minutes before anything fails."""
    capacity, what = rank_capacity(env)
    if ranks > capacity and not oversubscribe:
        raise ConfigError(
            f"mpi.ranks: {ranks} ranks exceed the {capacity} {what}; lower mpi.ranks or set "
            "mpi.oversubscribe=true"
        )


def require_inputs(cfg: Config) -> None:
    """Check the workload's input file (XPCS data, NRPT model JSON); raises InputError."""
    if isinstance(cfg, XpcsJob):
        from hpcfit.io.sources import require_file

        require_file(cfg.data)
    elif isinstance(cfg, NrptJob) and cfg.nrpt.model is NrptModel.file:
        from hpcfit.pipelines.nrpt import build_model

        build_model(cfg.nrpt)


def unfinished_work(run_dir: Path) -> list[str]:
    """For each rank log, the shard attempt of this run that started and never ended (a rank
    that died)."""
    from hpcfit.pipelines.status import RUN_BEGINS

    found = []
    for path in sorted(run_dir.glob("rank-*.log")):
        open_attempts: dict[str, str] = {}
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(RUN_BEGINS):  # an earlier run's lines are not this run's
                open_attempts.clear()
            for marker in (" start shard ", " end shard "):
                if marker in line:
                    head, _, tail = line.partition(marker)
                    rank = head.rsplit("rank ", 1)[-1].strip()
                    key = f"{rank}:{' '.join(tail.split()[:3]).rstrip(':')}"
                    if marker == " start shard ":
                        open_attempts[key] = f"rank {rank} started shard {tail.strip()}"
                    else:
                        open_attempts.pop(key, None)
        found += [f"{text} and did not finish it" for text in open_attempts.values()]
    return found
