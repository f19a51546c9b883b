"""Process set-up: XLA flag merging (the device count is replaced, every other user flag is
kept) and the cap on glibc's malloc arenas."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from hpcfit.runtime.process import (
    MALLOC_ARENAS,
    MMAP_THRESHOLD,
    limit_malloc_arenas,
    merge_xla_flags,
)


@pytest.mark.parametrize(
    ("existing", "count", "expected"),
    [
        ("", 4, "--xla_force_host_platform_device_count=4"),
        ("--xla_force_host_platform_device_count=8", 2, "--xla_force_host_platform_device_count=2"),
        (
            "--xla_cpu_multi_thread_eigen=false --xla_force_host_platform_device_count=8 --foo=1",
            3,
            "--xla_cpu_multi_thread_eigen=false --foo=1 --xla_force_host_platform_device_count=3",
        ),
        (  # no count asked for: the user's flags, device count included, stay as they are
            "--xla_force_host_platform_device_count=8 --bar",
            None,
            "--xla_force_host_platform_device_count=8 --bar",
        ),
    ],
)
def test_device_count_replaced_other_flags_kept(existing: str, count, expected: str) -> None:
    assert merge_xla_flags(existing, count) == expected


def fresh_process(code: str, mode: str, *, unset: str) -> list[str]:
    """The words ``python -c code mode`` prints, run without the variable ``unset``."""
    env = {k: v for k, v in os.environ.items() if k != unset}
    return subprocess.run(
        [sys.executable, "-c", code, mode],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()


_ARENA_PROBE = r"""
import ctypes, os, sys, tempfile, threading
from hpcfit.runtime.process import limit_malloc_arenas
cap = limit_malloc_arenas() if sys.argv[1] == "cap" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
start = threading.Barrier(8)

def work():
    start.wait()  # all eight threads allocate at once
    for _ in range(200):
        libc.free(ctypes.c_void_p(libc.malloc(64 * 1024)))

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
path = os.path.join(tempfile.mkdtemp(), "info.xml")
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
print(cap, open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"),
    reason="malloc arenas are glibc's",
)
def test_malloc_arenas_capped_before_threads_allocate() -> None:
    """Eight threads allocating at once get their own arenas by glibc's default; after
    ``limit_malloc_arenas`` they share two (the cap that keeps a long NUTS run's memory flat)."""

    def arenas(mode: str) -> tuple[str, int]:
        out = fresh_process(_ARENA_PROBE, mode, unset="MALLOC_ARENA_MAX")
        return out[0], int(out[1])

    assert arenas("cap") == (str(MALLOC_ARENAS), MALLOC_ARENAS)
    cap, uncapped = arenas("none")
    assert cap == "None" and uncapped > MALLOC_ARENAS


def test_malloc_arena_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's MALLOC_ARENA_MAX (read by glibc at start-up) is reported, not overridden; one
    that is not a count is ignored by glibc, so the cap applies."""
    monkeypatch.setenv("MALLOC_ARENA_MAX", "6")
    assert limit_malloc_arenas() == 6
    monkeypatch.setenv("MALLOC_ARENA_MAX", "many")  # glibc ignores it: hpcfit's cap applies
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas() == (MALLOC_ARENAS if glibc else None)


_MMAP_PROBE = r"""
import ctypes, sys
from hpcfit.runtime.process import fix_mmap_threshold
fixed = fix_mmap_threshold() if sys.argv[1] == "fix" else None


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
size = 4 << 20
libc.free(libc.malloc(size))  # a mapped block freed: glibc's dynamic threshold rises past it
before = libc.mallinfo2().hblks
block = libc.malloc(size)
print(fixed, libc.mallinfo2().hblks - before)  # 1: the second block is mapped too
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the mmap threshold is glibc's",
)
def test_freed_blocks_do_not_move_blocks_into_the_arenas() -> None:
    """By glibc's default, freeing a 4 MiB mapped block raises the mmap threshold, so the next
    4 MiB block comes from an arena, whose freed memory the process keeps (a long NUTS run's
    RSS then grows); with the threshold fixed, it is mapped again and unmapped when freed."""
    unset = "MALLOC_MMAP_THRESHOLD_"
    assert fresh_process(_MMAP_PROBE, "fix", unset=unset) == [str(MMAP_THRESHOLD), "1"]
    assert fresh_process(_MMAP_PROBE, "none", unset=unset) == ["None", "0"]
