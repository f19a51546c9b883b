"""hpcfit's values as plain JSON values: the one conversion every JSON writer shares.

Checkpoints, which must round-trip exactly (arrays bit for bit, tuples as tuples), use the
codec of :mod:`hpcfit.io.checkpoint` instead.
"""

from __future__ import annotations

import dataclasses
import math
from enum import Enum
from pathlib import PurePath
from typing import Any, Literal

import numpy as np


def plain(obj: Any, *, nonfinite: Literal["null", "keep"] = "null") -> Any:
    """``obj`` as dicts, lists, strings, numbers, booleans and None.

    Dataclass instances become the dict of their fields, enums their value, paths strings,
    NumPy scalars Python scalars, arrays and tuples lists, mapping keys strings. A non-finite
    float becomes None (``nonfinite="null"``, for strict JSON) or stays (``"keep"``, for
    writers that allow JSON's NaN and Infinity tokens).
    """
    if obj is None or isinstance(obj, bool | str | int):
        return obj
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist(), nonfinite=nonfinite)
    if isinstance(obj, np.bool_ | np.integer):
        return obj.item()
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) or nonfinite == "keep" else None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v, nonfinite=nonfinite) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v, nonfinite=nonfinite) for v in obj]
    return obj
