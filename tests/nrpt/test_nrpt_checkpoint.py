"""Round checkpoints: resuming is bitwise equal to not stopping."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nrpt_helpers import assert_results_equal

from hpcfit.errors import AdviceWarning
from hpcfit.io.checkpoint import load_record
from hpcfit.nrpt import IsingTarget, grid_model, run
from hpcfit.nrpt.checkpoint import KIND, round_stem
from hpcfit.parallel.comm import SerialComm


class _Stop(Exception):
    """Raised from on_round to interrupt a run after a round has been checkpointed."""


def _stop_after(round_index):
    def hook(info):
        if info["round"] == round_index:
            raise _Stop

    return hook


@pytest.fixture(scope="module")
def target():
    return IsingTarget(grid_model(4, J=0.8))


CONFIG = {"n_chains": 5, "n_rounds": 6, "n_expl": 2, "seed": 9}


@pytest.mark.parametrize("path", ["auto", "host"])
def test_resume_is_bitwise_equal_to_an_uninterrupted_run(target, tmp_path, path):
    comm = SerialComm() if path == "host" else None
    reference = run(target, **CONFIG)
    with pytest.raises(_Stop):
        run(
            target, **CONFIG, checkpoint_dir=tmp_path, on_round=_stop_after(3), comm=comm, path=path
        )
    # one complete record, of the last finished round; the earlier rounds' are removed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "nrpt_round_00003.json",
        "nrpt_round_00003.npz",
    ]
    seen = []
    resumed = run(
        target, **CONFIG, checkpoint_dir=tmp_path, on_round=seen.append, comm=comm, path=path
    )
    assert resumed.resumed_from == 3
    assert [i["round"] for i in seen] == [4, 5, 6]
    assert_results_equal(reference, resumed)
    # a finished run is rebuilt from its last checkpoint without sampling again
    again = run(target, **CONFIG, checkpoint_dir=tmp_path, on_round=seen.append)
    assert again.resumed_from == 6 and len(seen) == 3
    assert_results_equal(reference, again)


def test_checkpoint_of_another_configuration_is_ignored_with_a_warning(target, tmp_path):
    run(target, **CONFIG, checkpoint_dir=tmp_path)
    other = {**CONFIG, "seed": 10}
    with pytest.warns(AdviceWarning, match="another configuration"):
        res = run(target, **other, checkpoint_dir=tmp_path)
    assert res.resumed_from == 0
    assert_results_equal(res, run(target, **other))
    with pytest.warns(AdviceWarning, match="another configuration"):
        run(IsingTarget(grid_model(4, J=0.9)), **other, checkpoint_dir=tmp_path)


def test_damaged_checkpoint_is_ignored_with_a_warning(target, tmp_path):
    run(target, **CONFIG, checkpoint_dir=tmp_path)
    last = round_stem(tmp_path, CONFIG["n_rounds"])
    last.with_suffix(".npz").write_bytes(b"not an npz archive")
    with pytest.warns(AdviceWarning, match="unreadable"):
        res = run(target, **CONFIG, checkpoint_dir=tmp_path)
    assert res.resumed_from == 0 and res.ok
    fingerprint = json.loads(last.with_suffix(".json").read_text())["fingerprint"]
    fields, reason = load_record(last, KIND, fingerprint)  # rewritten by the run
    assert reason == "" and fields is not None
    assert fields["states"].shape == (5, 16) and fields["states"].dtype == np.int8
