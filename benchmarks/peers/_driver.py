"""The line protocol shared by the peer drivers (``*_driver.py``), run by a peer venv's python.

One JSON object per line: a command on stdin (``{"cmd": name, …}``), one reply on stdout.
Importing this module first keeps the protocol channel clean: replies go to a duplicate of the
original stdout, and everything the peer package prints goes to stderr. Standard library and
``benchmarks/_record.py`` only, never hpcfit.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/ for _record

_PROTO = os.fdopen(os.dup(1), "w", buffering=1)  # replies go to the original stdout
os.dup2(2, 1)  # everything printed by the package goes to stderr
sys.stdout = sys.stderr

import _record  # noqa: E402


def reply(obj: dict[str, Any]) -> None:
    _PROTO.write(json.dumps(_record._jsonable(obj)) + "\n")
    _PROTO.flush()


def version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    try:
        from importlib.metadata import version as _version

        return _version(name)
    except Exception:
        return None


def serve(commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> int:
    """Answer commands until ``quit`` or end of input; an exception becomes an error reply."""
    reply({"ok": True, "ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            if msg.get("cmd") == "quit":
                reply({"ok": True, "bye": True})
                return 0
            reply({"ok": True, **commands[msg["cmd"]](msg)})
        except Exception as exc:
            reply(
                {
                    "ok": False,
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            )
    return 0
