"""Start a peer driver in its own virtual environment and talk to it (one JSON line each way)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class PeerError(RuntimeError):
    """The peer driver failed to start or answered a command with an error."""


class PeerProcess:
    """A long-lived peer driver (``peers/<name>_driver.py``) run by ``python``.

    The driver's stderr (the package's own logging) goes to ``log_path``.
    """

    def __init__(self, python: Path, driver: str, env: dict[str, str] | None = None):
        self.workdir = Path(tempfile.mkdtemp(prefix="hpcfit-peer-"))
        self.log_path = self.workdir / "driver.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed in close())
        full_env = {**os.environ, **(env or {})}
        full_env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [str(python), str(HERE / driver)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            env=full_env,
            cwd=self.workdir,
        )
        hello = self._read()
        if not hello.get("ready"):
            raise PeerError(f"peer driver did not start: {hello}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise PeerError(f"peer driver exited (rc={self.proc.poll()}); log:\n{self.log_tail()}")
        return json.loads(line)

    def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if not reply.get("ok"):
            raise PeerError(
                f"peer command {cmd!r} failed: {reply.get('error')}\n{reply.get('traceback', '')}"
            )
        return reply

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("quit")
                self.proc.wait(timeout=30)
            except (PeerError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PeerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_peer(
    python: Path | None, name: str, setup_hint: str, inputs: dict[str, Any], *, skip: bool = False
) -> tuple[PeerProcess | None, dict[str, Any] | None, Path | None, str | None]:
    """Start ``peers/<name>_driver.py`` and hand it ``inputs`` as an NPZ in its work directory.

    Returns ``(peer, info, inputs_path, skipped_reason)``: the peer is None, with the reason,
    when ``skip`` is set, the venv is missing or the driver fails; benchmarks then record the
    reason and go on with hpcfit alone.
    """
    import numpy as np

    if skip:
        return None, None, None, "--no-peer given"
    if python is None:
        return None, None, None, f"peer venv .peers/{name} missing; create it with `{setup_hint}`"
    peer = None
    try:
        peer = PeerProcess(python, f"{name}_driver.py")
        info = peer.call("info")
        path = peer.workdir / "inputs.npz"
        np.savez(path, **inputs)
        return peer, info, path, None
    except (PeerError, OSError) as exc:
        if peer is not None:
            peer.close()
        return None, None, None, f"peer driver failed: {exc}"
