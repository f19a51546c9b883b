"""XLA flag merging: the device count is replaced, every other user flag is kept."""

from __future__ import annotations

import pytest

from hpcfit.runtime.process import merge_xla_flags


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
