"""A reader's shell after `source .venv/bin/activate`: which program a README command starts,
and whether it starts at all (`--help` in a subprocess, with the venv's bin first on PATH and no
PYTHONPATH, from the repository root, as the README's commands are typed)."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The repository's own .venv (what launch/setup_venv.sh creates), else the one running the tests.
VENV = ROOT / ".venv" if (ROOT / ".venv" / "bin" / "python").exists() else Path(sys.prefix)
ACTIVATE = "source .venv/bin/activate"
PYTHONS = {"python", "python3", ".venv/bin/python"}
# Programs that only the activated venv provides (bash is the system's, sbatch the cluster's).
FROM_VENV = PYTHONS | {"pip", "deepspeed", "torchrun", "hf", "wandb"}


def activated_env() -> dict[str, str]:
    """The environment `source .venv/bin/activate` leaves in a fresh shell."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


def which(program: str) -> Path | None:
    """What the shell runs for `program`."""
    if program.startswith(".venv/"):
        path = VENV / program.removeprefix(".venv/")
        return path if path.exists() else None
    found = shutil.which(program, path=activated_env()["PATH"])
    return Path(found) if found else None


@functools.cache
def run(argv: tuple[str, ...]) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, env=activated_env(), cwd=ROOT, timeout=300)


def help_argv(executable: Path, args: list[str]) -> tuple[str, ...]:
    """The `--help` form of a command: the module's or script's for python, the subcommand's for
    CLIs with subcommands, the program's own otherwise."""
    exe = str(executable)
    if executable.name.startswith("python"):
        return (exe, "-m", args[1], "--help") if args[:1] == ["-m"] else (exe, args[0], "--help")
    if executable.name in ("hf", "wandb"):
        return (exe, args[0], "--help")
    if executable.name == "pip":
        return (exe, "--version")
    return (exe, "--help")


def check_starts(program: str, args: list[str], scripts: set[str]) -> subprocess.CompletedProcess | None:
    """Fail unless the activated venv provides `program` and its `--help` runs; the help it printed."""
    if program not in FROM_VENV | scripts:
        return None
    executable = which(program)
    assert executable is not None and executable.parent == VENV / "bin", (
        f"`{program}` is not in {VENV / 'bin'} (after `{ACTIVATE}` the shell runs {executable})")
    shown = run(help_argv(executable, args))
    assert shown.returncode == 0, f"`{' '.join(help_argv(executable, args))}` fails: {shown.stderr[-800:]}"
    return shown
