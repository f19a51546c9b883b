"""The one conversion to plain JSON values (``hpcfit.io.jsonable.plain``)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from hpcfit.config import XpcsJob
from hpcfit.io.jsonable import plain


class Colour(Enum):
    red = "r"


@dataclass(frozen=True)
class Inner:
    colour: Colour = Colour.red
    limits: tuple[float, ...] = (1.0, math.inf)


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    path: Path = Path("/data/a.h5")
    counts: np.ndarray = field(default_factory=lambda: np.arange(3, dtype=np.int32))


def test_values_become_plain_json_and_nonfinite_floats_null_or_kept() -> None:
    out = plain(Outer())
    assert out == {
        "inner": {"colour": "r", "limits": [1.0, None]},
        "path": "/data/a.h5",
        "counts": [0, 1, 2],
    }
    assert type(out["counts"][0]) is int
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    kept = plain(Outer(), nonfinite="keep")
    assert kept["inner"]["limits"] == [1.0, math.inf]
    assert plain({1: np.float32(0.5), "b": np.bool_(True), "n": np.nan}) == {
        "1": 0.5,
        "b": True,
        "n": None,
    }


def test_the_whole_job_config_is_plain_and_keeps_its_values() -> None:
    cfg = XpcsJob()
    out = plain(cfg, nonfinite="keep")
    assert out["nlsq"]["scaling"] == cfg.nlsq.scaling.value
    assert out["cmc"]["num_samples"] == cfg.cmc.num_samples
    assert json.loads(json.dumps(out)) == out  # nothing left that JSON cannot hold
