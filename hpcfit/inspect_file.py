"""``hpcfit-inspect FILE [--json]``: what a data file holds, from its metadata alone.

The first step with a new file: layout, frames, the frame interval and the keys it comes from,
and one row per matrix (position, producer bin label, q, φ, shape, where each value came from).
No matrix is read and JAX is never imported, so it answers in about a second on files of
hundreds of 5000 × 5000 matrices. Bad files get the same one-line error and exit status 2 as
``hpcfit``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Any

from hpcfit.errors import InputError


def describe(path: str, layout: str = "auto") -> dict[str, Any]:
    """The ``--json`` document of ``path``."""
    from hpcfit.xpcs.layouts import index_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # they are listed in the document instead
        index = index_file(path, layout=layout)
    return {
        "file": index.path,
        "layout": index.layout,
        "n_frames": index.n_frames,
        "n_bins": index.n_bins,
        "dtype": index.dtype,
        "half_stored": index.half,
        "dt": index.dt_file,
        "dt_source": index.dt_source,
        "bins": index.bins(),
        "warnings": list(index.warnings),
    }


def _table(doc: dict[str, Any]) -> str:
    dt = "not stated (give data.dt)" if doc["dt"] is None else f"{doc['dt']:.9g} s"
    lines = [
        f"file      {doc['file']}",
        f"layout    {doc['layout']}  ({doc['n_bins']} matrices of {doc['n_frames']} × "
        f"{doc['n_frames']} frames, {doc['dtype']}{', half-stored' if doc['half_stored'] else ''})",
        f"dt        {dt}  [{doc['dt_source']}]",
        "",
        f"{'pos':>4}  {'bin':>5}  {'q (1/Å)':>11}  {'phi (deg)':>9}  dataset",
    ]
    for row in doc["bins"]:
        b = "-" if row.get("bin") is None else str(row["bin"])
        lines.append(
            f"{row['position']:>4}  {b:>5}  {row['q']:>11.6g}  {row['phi']:>9.4g}  {row['dataset']}"
        )
    lines += [f"warning: {w}" for w in doc["warnings"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="hpcfit-inspect",
        description="Show the layout, frames, dt and (bin, q, phi) of every matrix of an XPCS "
        "two-time file, from its metadata (no matrix is read).",
    )
    parser.add_argument("file", help="HDF5 (.h5, .hdf5, .hdf, .nxs) or NPZ (.npz) file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--layout",
        default="auto",
        help="force a layout: auto, aps_u, aps_legacy, nexus, exchange, flat (NPZ: auto)",
    )
    args = parser.parse_args(argv)
    try:
        doc = describe(args.file, args.layout)
    except InputError as exc:
        message = " ".join(str(exc).split())
        sys.stderr.write(f"hpcfit-inspect: error: {message}\n")
        raise SystemExit(exc.exit_code) from None
    print(json.dumps(doc, indent=1) if args.json else _table(doc))


if __name__ == "__main__":
    main()
