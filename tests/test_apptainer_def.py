"""``Apptainer.def``, checked without Apptainer.

Apptainer cannot be installed on the CI machines, so the definition file is (1) linted here by a
parser of its own (valid and required sections, templating, the README's install command, the
files the package needs) and (2) replayed: the ``%files`` sources are copied into a throwaway
tree that mirrors their destinations, ``/opt`` is redirected there, and the ``%post`` lines run
under bash, then ``%environment`` and ``%test``. The replay proves every build step except the
base image, with two shortcuts that keep it fast and offline for the dependencies: ``python``
is this test interpreter's base Python (the same minor version as the test venv, not the image's
3.12), and the test venv's site-packages are on ``PYTHONPATH``, so pip finds most of hpcfit's
dependencies installed. pip builds and installs hpcfit itself (a non-editable wheel, with the
configs inside it) and the ``mpich`` wheel (libmpi.so.12 and ``mpiexec`` in the venv, where
mpi4py looks first) into the fresh venv, which needs the package index (about 14 MB).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEF = REPO / "Apptainer.def"
ALLOWED = {
    "setup",
    "files",
    "post",
    "test",
    "environment",
    "startscript",
    "runscript",
    "labels",
    "help",
    "arguments",
}
APP_SECTIONS = {"appfiles", "appinstall", "appenv", "apprun", "applabels", "apphelp", "apptest"}
REQUIRED = ("files", "post", "environment", "runscript", "test", "labels", "help")


def parse(text: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(header keywords, section name → body lines); raises ValueError on a repeated section."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        match = re.match(r"^%(\w+)\b(.*)$", line)
        if match:
            name, rest = match.group(1), match.group(2).strip()
            key = f"{name} {rest.split()[0]}" if name in APP_SECTIONS and rest else name
            if key in sections:
                raise ValueError(f"section %{key} appears twice")
            current = sections[key] = []
            continue
        if current is not None:
            current.append(raw)
        elif line and not line.startswith("#"):
            keyword, _, value = line.partition(":")
            header[keyword.strip()] = value.strip()
    return header, {k: _dedent(v) for k, v in sections.items()}


def _dedent(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def first_keyword(text: str) -> str:
    for line in text.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return line.split(":")[0].strip()
    return ""


def pip_installs(text: str) -> list[tuple[str, frozenset[str]]]:
    """Every ``pip install`` in ``text`` as (requirement path, extras), options dropped."""
    found = []
    for match in re.finditer(r"pip install ([^`\n]+)", text):
        for word in shlex.split(match.group(1)):
            if word.startswith("-"):
                continue
            spec = re.match(r"^([^\[]+)(?:\[([^\]]*)\])?$", word)
            if spec:
                extras = frozenset(e.strip() for e in (spec.group(2) or "").split(",") if e)
                found.append((spec.group(1), extras))
            break
    return found


@pytest.fixture(scope="module")
def definition() -> tuple[dict[str, str], dict[str, list[str]]]:
    return parse(DEF.read_text())


def test_header_comes_first(definition) -> None:
    header, _ = definition
    assert first_keyword(DEF.read_text()) == "Bootstrap"
    assert header["Bootstrap"] == "docker"
    assert re.fullmatch(r"python:3\.12[-\w.]*", header["From"]), header["From"]


def test_sections_are_valid_and_complete(definition) -> None:
    _, sections = definition
    for key in sections:
        name = key.split()[0]
        assert name in ALLOWED or name in APP_SECTIONS, f"unknown section %{name}"
    missing = [name for name in REQUIRED if name not in sections or not sections[name]]
    assert not missing, f"missing or empty sections: {missing}"


def test_parser_rejects_misspelled_and_repeated_sections() -> None:
    _, sections = parse("Bootstrap: docker\nFrom: x\n%enviroment\n    export A=1\n")
    assert set(sections) == {"enviroment"} and "enviroment" not in ALLOWED
    with pytest.raises(ValueError, match="%post appears twice"):
        parse("Bootstrap: docker\n%post\n  true\n%post\n  true\n")


def test_every_template_variable_is_an_argument_and_every_argument_is_used(definition) -> None:
    _, sections = definition
    arguments = dict(line.split("=", 1) for line in sections.get("arguments", []))
    text = DEF.read_text().split("%arguments", 1)[1]
    used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))
    assert used <= set(arguments), f"undefined: {used - set(arguments)}"
    assert set(arguments) <= used, f"unused arguments: {set(arguments) - used}"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert arguments["HPCFIT_VERSION"] == version


def test_post_installs_with_the_readme_command(definition) -> None:
    _, sections = definition
    post = pip_installs("\n".join(sections["post"]))
    assert len(post) == 1, sections["post"]
    readme = pip_installs((REPO / "README.md").read_text())
    assert post[0] in readme, f"%post installs {post[0]}, the README {readme}"


def test_runscript_execs_hpcfit_and_test_runs_a_job(definition) -> None:
    _, sections = definition
    assert sections["runscript"][-1] == 'exec hpcfit "$@"'
    assert any(line.startswith("hpcfit ") for line in sections["test"]), sections["test"]
    assert all("=${" in line for line in sections["environment"] if "_THREADS" in line)


def test_files_exist_and_cover_the_package(definition) -> None:
    _, sections = definition
    sources = {}
    for line in sections["files"]:
        src, dst = line.split()
        assert (REPO / src).exists(), f"%files source {src} does not exist"
        assert dst.startswith("/opt/"), dst
        sources[src] = dst
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", project["project"]["readme"], *wheel["packages"]}
    needed |= set(wheel.get("force-include", {}))
    assert needed <= set(sources), f"%files lacks {needed - set(sources)}"
    assert len({str(Path(d).parent) for d in sources.values()}) == 1  # one source tree


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.slow
def test_post_and_test_sections_run(definition, tmp_path: Path) -> None:
    """%files → %post → %environment → %test in a throwaway tree (see the module docstring)."""
    _, sections = definition
    root = tmp_path / "image"
    opt = f"{root}/opt/"
    for line in sections["files"]:
        src, dst = line.split()
        target = Path(dst.replace("/opt/", opt, 1))
        target.parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (REPO / src).is_dir() else shutil.copy2
        copy(REPO / src, target, **({"ignore": _ignore} if copy is shutil.copytree else {}))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    base_python = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (bindir / "python").symlink_to(base_python)
    deps = tmp_path / "deps"  # the test venv's packages, less hpcfit itself and the MPI wheel
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith(("mpich", "hpcfit", "_hpcfit", "__editable__")):
            (deps / entry.name).symlink_to(entry)
    env = {
        "PATH": f"{bindir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(deps),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "TMPDIR": str(tmp_path),
    }
    for key in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_CERT", "SSL_CERT_FILE", "LANG"):
        if key in os.environ:
            env[key] = os.environ[key]
    post = [line.replace("/opt/", opt) for line in sections["post"]]
    run = [line.replace("/opt/", opt) for line in sections["environment"] + sections["test"]]
    script = "\n".join(
        [
            "set -euo pipefail",
            "(",  # build time
            *post,
            ")",
            f"cd {shlex.quote(str(tmp_path))}",  # run time: a fresh shell elsewhere
            *run[: len(sections["environment"])],
            'python -c "import hpcfit; print(hpcfit.__file__)"',
            *run[len(sections["environment"]) :],
        ]
    )
    proc = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=280
    )
    output = f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, output
    installed = Path(f"{opt}venv/lib").glob("python3*/site-packages/hpcfit/configs/config.yaml")
    assert list(installed), f"no configs in the installed wheel\n{output}"
    assert f"{opt}venv/lib/" in proc.stdout, output  # hpcfit imported from the image's venv
    assert "Hello, World! I am process 1 of 2" in proc.stdout, output


def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
