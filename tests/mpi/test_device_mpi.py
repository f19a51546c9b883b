"""Rank roles from the node-local communicator.

Size-agnostic: valid under ``mpiexec -n 2`` and ``-n 4`` (and one rank). JAX is already imported
in the test process, so the roles come from the pure planner that ``assign_rank_devices`` wraps.
"""

from __future__ import annotations

import os

import pytest

from hpcfit.device import plan_rank_role

pytestmark = [pytest.mark.mpi, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def node():
    from hpcfit.parallel.comm import MPIComm

    return MPIComm().split_shared()


def _launch_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(values)
    return env


def test_one_gpu_per_node(node) -> None:
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    role = plan_rank_role(node.rank, 1, _launch_env(), device_count=2)
    roles = node.gather((node.rank, world.Get_rank(), role.role, dict(role)))
    if node.rank != 0:
        assert roles is None
        return
    assert [r[0] for r in roles] == list(range(node.size))
    worlds = [r[1] for r in roles]
    assert worlds == sorted(worlds)  # local ranks follow world ranks (split key = world rank)
    assert [r[2] for r in roles] == ["gpu"] + ["cpu"] * (node.size - 1)
    first = roles[0][3]
    assert (first["CUDA_VISIBLE_DEVICES"], first["JAX_PLATFORMS"]) == ("0", "cuda,cpu")
    for _, _, _, updates in roles[1:]:
        assert (updates["CUDA_VISIBLE_DEVICES"], updates["JAX_PLATFORMS"]) == ("", "cpu")
        assert updates["XLA_FLAGS"].endswith("--xla_force_host_platform_device_count=2")


def test_two_ranks_one_node() -> None:
    """Under mpiexec on one host the first two world ranks are node-local ranks 0 and 1."""
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    if world.Get_size() < 2:
        pytest.skip("needs at least 2 ranks")
    node = world.Split_type(MPI.COMM_TYPE_SHARED, key=world.Get_rank())
    try:
        if node.Get_size() != world.Get_size():
            pytest.skip("ranks span several nodes")
        role = plan_rank_role(node.Get_rank(), 1, _launch_env())
        assert node.Get_rank() == world.Get_rank()
        assert role.role == ("gpu" if world.Get_rank() == 0 else "cpu")
    finally:
        node.Free()


def test_node_lists_gathered_over_the_node(node) -> None:
    """Launch-time lists exchanged over the node communicator: per-task bindings (different
    one-entry lists) keep every rank on its GPU; one shared one-entry list gives one GPU rank."""
    own = str(node.rank)
    lists = node.bcast(node.gather(own))
    bound = plan_rank_role(
        node.rank, "auto", _launch_env(CUDA_VISIBLE_DEVICES=own), node_visible=lists
    )
    shared_lists = node.bcast(node.gather("0"))
    shared = plan_rank_role(
        node.rank, "auto", _launch_env(CUDA_VISIBLE_DEVICES="0"), node_visible=shared_lists
    )
    seen = node.gather((bound.role, bound["CUDA_VISIBLE_DEVICES"], shared.role))
    if node.rank == 0:
        assert [s[:2] for s in seen] == [("gpu", str(r)) for r in range(node.size)]
        assert [s[2] for s in seen] == ["gpu"] + ["cpu"] * (node.size - 1)
