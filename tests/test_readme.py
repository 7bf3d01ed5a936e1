"""Every command in README.md is checked against the real parsers, without running any job.

The README's fenced bash blocks (and the commands of its Measured figures table) are split into
commands; each is first started as a reader would type it after `source .venv/bin/activate`
(tests/readme_shell.py: the program found through the venv's bin, its `--help` run in a fresh
environment), then recognised by what it starts and checked with the argument parser of the
program it calls: data_prep's, launch/pretrain.py's (plus the config override parsing and
validation, with throwaway shard directories standing in for the README's), the export and
span-filling CLIs', DeepSpeed's and torchrun's launchers'. A command of any other kind fails, so
the README cannot gain a command that nothing checks. Every repository path it names must exist.
"""
from __future__ import annotations

import ast
import configparser
import glob
import re
import shlex
from pathlib import Path

import pytest

from config_fixtures import fake_shards
from readme_shell import ACTIVATE, PYTHONS, check_starts

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PRETRAIN_SCRIPT = "launch/pretrain.py"
EVALUATE_MODULE = "pretrain.evaluate"
TOP_COMMANDS = [["bash", "launch/quickstart.sh"], ["bash", "tests/run.sh"]]
SHELL_OPERATORS = {";", "&&", "||", "|", "&", ">", ">>", "<", "2>"}
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


# ---------------------------------------------------------------------------------------------
# Reading the README


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def block_commands(block: str) -> list[list[str]]:
    """Shell words of each command of a block (continuation lines joined, comments dropped)."""
    joined = block.replace("\\\n", " ")
    return [words for line in joined.splitlines() if (words := shlex.split(line, comments=True))]


def performance_commands(text: str) -> list[list[str]]:
    """The code in the `command` column of the Measured figures table."""
    section = text.split("\n## Measured figures", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")]
    return [shlex.split(code) for cells in rows[1:] for code in re.findall(r"`([^`]+)`", cells[2])]


def readme_commands() -> list[list[str]]:
    return [cmd for block in fenced_blocks(README, "bash") for cmd in block_commands(block)] + performance_commands(README)


def split_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    env = {}
    while words and _ENV_ASSIGNMENT.match(words[0]):
        name, value = words[0].split("=", 1)
        env[name] = value
        words = words[1:]
    return env, words


# ---------------------------------------------------------------------------------------------
# Checks per program


def console_scripts() -> dict[str, str]:
    """setup.cfg's console scripts: name -> module whose main() they run."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    entries = [line.split("=") for line in cfg["options.entry_points"]["console_scripts"].strip().splitlines()]
    return {name.strip(): target.split(":")[0].strip().removesuffix(".__main__") for name, target in entries}


def check_env_names(env: dict[str, str], sources: list[Path]) -> None:
    """Variables set before a command must be ones the code it runs reads."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources if p.is_file())
    for name in env:
        assert re.search(rf"\b{name}\b", text), f"{name}= is read by none of {[p.name for p in sources]}"


def check_data_prep(args: list[str]) -> None:
    from data_prep.cli import COMMANDS, build_parser

    if not args or args[0] not in COMMANDS:  # what data_prep.cli.main does: 'prepare' is the default
        args = ["prepare", *args]
    build_parser().parse_args(args)


def check_pretrain(args: list[str], world_size: int, tmp_path: Path) -> None:
    """Parse and validate as launch/pretrain.py does, with throwaway shards for the README's."""
    from data_prep.span_lengths import raw_length_for_inputs
    from pretrain.config import check_deepspeed_keys, load_config, validate

    config = load_config(args)
    data = config.run.data
    chunk_bytes = raw_length_for_inputs(data.input_length, data.noise_density, data.mean_noise_span_length)
    data.train = [str(fake_shards(tmp_path / f"shards{i}", chunk_bytes)) for i, _ in enumerate(data.train)]
    init_from = config.run.model.init_from
    if init_from is not None and init_from.startswith(("/", ".")):  # a local checkpoint on the user's machine
        config.run.model.init_from = str(tmp_path)
    validate(config, world_size=world_size)
    check_deepspeed_keys(config.deepspeed)


def check_export(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import pretrain.export

    calls = []
    monkeypatch.setattr(pretrain.export, "export", lambda *a, **k: calls.append((a, k)))
    assert pretrain.export.main(args) == 0 and len(calls) == 1


def check_fill(args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import pretrain.fill

    texts = []

    def encode_only(model, text: str, *, marker: str, **generation) -> pretrain.fill.Filled:
        _, spans = pretrain.fill.build_input_ids(text, marker)  # raises for no marker or > 11 markers
        texts.append(text)
        return pretrain.fill.Filled(text, [""] * spans)

    monkeypatch.setattr(pretrain.fill, "load_model", lambda model_dir: None)
    monkeypatch.setattr(pretrain.fill, "fill", encode_only)
    assert pretrain.fill.main(args) == 0 and texts


def check_evaluate(args: list[str], world: int = 1) -> None:
    from pretrain.evaluate.cli import validate_args, build_parser
    from pretrain.evaluate.distributed import World

    validate_args(build_parser().parse_args(args), World(0, world, 0))


def deepspeed_world(launcher) -> int:
    if launcher.num_gpus > 0:
        return launcher.num_gpus
    if launcher.hostfile and Path(ROOT / launcher.hostfile).is_file():
        lines = (ROOT / launcher.hostfile).read_text().splitlines()
        return sum(int(m.group(1)) for line in lines if (m := re.search(r"slots=(\d+)", line.split("#")[0])))
    return 1


def check_deepspeed(args: list[str], tmp_path: Path) -> None:
    from deepspeed.launcher.runner import parse_args

    launcher = parse_args(args)
    if launcher.module and launcher.user_script == EVALUATE_MODULE:
        return check_evaluate(launcher.user_args, deepspeed_world(launcher))
    assert launcher.user_script == PRETRAIN_SCRIPT, f"deepspeed starts {launcher.user_script}, not {PRETRAIN_SCRIPT}"
    if launcher.hostfile != "/job/hostfile":  # DeepSpeed's default location
        assert (ROOT / launcher.hostfile).is_file(), f"no hostfile {launcher.hostfile}"
    check_pretrain(launcher.user_args, deepspeed_world(launcher), tmp_path)


def check_torchrun(args: list[str], tmp_path: Path) -> None:
    from torch.distributed.run import parse_args

    launcher = parse_args(args)
    assert launcher.training_script == PRETRAIN_SCRIPT, f"torchrun starts {launcher.training_script}"
    nodes = int(str(launcher.nnodes).split(":")[-1])
    per_node = int(launcher.nproc_per_node) if str(launcher.nproc_per_node).isdigit() else 1
    check_pretrain(launcher.training_script_args, nodes * per_node, tmp_path)


def check_sbatch(env: dict[str, str], args: list[str], tmp_path: Path) -> None:
    script, config, *shards = args
    text = (ROOT / script).read_text(encoding="utf-8")
    check_env_names(env, [ROOT / script])
    nodes = int(re.search(r"^#SBATCH --nodes=(\d+)", text, re.MULTILINE).group(1))
    gpus = int(re.search(r"^#SBATCH --gpus-per-node=(\d+)", text, re.MULTILINE).group(1))
    assert shards, f"{script} needs CONFIG and at least one SHARD_DIR"
    pretrain_args = ["--config", config, "--data", *shards, "--output_dir", "runs/x", *shlex.split(env.get("EXTRA_ARGS", ""))]
    check_pretrain(pretrain_args, nodes * gpus, tmp_path)


def check_cli_flags(tool: str, subcommand: str, shown_help: str, args: list[str]) -> None:
    """A third-party CLI: each long flag used must be one its --help lists."""
    for flag in (a.split("=")[0] for a in args if a.startswith("--")):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", shown_help), f"`{tool} {subcommand}` has no option {flag}"


def check_pip_extra(args: list[str]) -> None:
    assert args[:2] == ["install", "-e"], f"unexpected pip command {args}"
    match = re.fullmatch(r"\.\[([\w,-]+)\]", args[2])
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert match and set(match.group(1).split(",")) <= set(cfg["options.extras_require"]), f"no extra {args[2]}"


def check_bench(args: list[str]) -> None:
    source = (ROOT / args[0]).read_text(encoding="utf-8")
    for flag in (a.split("=")[0] for a in args[1:] if a.startswith("--")):
        assert f'add_argument("{flag}"' in source, f"{args[0]} has no option {flag}"


def check_command(words: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    operators = [w for w in words if w in SHELL_OPERATORS or w.endswith(";")]
    assert not operators, f"one command per line, without {operators}: {shlex.join(words)}"
    env, words = split_env(words)
    program, args = words[0], words[1:]
    if program == "source":
        assert args == [ACTIVATE.split()[1]], f"the README activates nothing but the venv: {shlex.join(words)}"
        return
    scripts = console_scripts()
    shown = check_starts(program, args, set(scripts))
    if program in scripts:  # data-prep, gbswt5-export, gbswt5-fill run `python -m MODULE`
        program, args = "python", ["-m", scripts[program], *args]
    if program == "bash":
        assert (ROOT / args[0]).is_file(), f"no script {args[0]}"
        check_env_names(env, [ROOT / args[0]])
        assert args[1:] == [], f"{args[0]} takes its settings from the environment, not arguments"
        return
    if program == "sbatch":
        return check_sbatch(env, args, tmp_path)
    check_env_names(env, sorted(ROOT.glob("pretrain/**/*.py")))
    if program == "deepspeed":
        return check_deepspeed(args, tmp_path)
    if program == "torchrun":
        return check_torchrun(args, tmp_path)
    if program in ("hf", "wandb"):
        return check_cli_flags(program, args[0], shown.stdout, args[1:])
    if program == "pip":
        return check_pip_extra(args)
    if program in PYTHONS and args[:1] == [PRETRAIN_SCRIPT]:
        return check_pretrain(args[1:], 1, tmp_path)
    if program in PYTHONS and args[:1] and args[0].startswith("bench/"):
        return check_bench(args)
    module_checks = {"data_prep": check_data_prep,
                     "pretrain.export": lambda a: check_export(a, monkeypatch),
                     "pretrain.fill": lambda a: check_fill(a, monkeypatch),
                     "pretrain.evaluate": check_evaluate}
    if program in PYTHONS and args[:1] == ["-m"] and args[1] in module_checks:
        return module_checks[args[1]](args[2:])
    pytest.fail(f"README command of unknown kind (add a check to tests/test_readme.py): {shlex.join(words)}")


# ---------------------------------------------------------------------------------------------
# Tests

COMMANDS = readme_commands()


def test_readme_starts_with_the_two_commands():
    title, rest = README.split("\n", 1)
    assert title.startswith("# ")
    assert rest.lstrip("\n").startswith("```bash\n"), "the two commands must come first, right after the title"
    first = fenced_blocks(README, "bash")[0]
    assert block_commands(first) == TOP_COMMANDS
    for _, script in TOP_COMMANDS:
        assert (ROOT / script).is_file()


def test_readme_says_to_activate_the_venv_before_its_other_commands():
    second = fenced_blocks(README, "bash")[1]
    assert block_commands(second) == [ACTIVATE.split()], "the block after the two commands activates .venv"
    assert README.index(ACTIVATE) < README.index("python -m"), "activate the venv before the first python command"


def test_readme_has_commands_of_every_main_kind():
    programs = {split_env(c)[1][0] for c in COMMANDS} | {tuple(split_env(c)[1][:3]) for c in COMMANDS}
    for kind in ["deepspeed", "torchrun", "sbatch", "gbswt5-export", ("python", "-m", "data_prep"),
                 ("python", "-m", "pretrain.export"), ("python", "-m", "pretrain.fill"),
                 ("python", "-m", "pretrain.evaluate")]:
        assert kind in programs, f"the README shows no {kind} command"


@pytest.mark.parametrize("words", COMMANDS, ids=[shlex.join(c)[:80] for c in COMMANDS])
def test_readme_command_parses(words, tmp_path, monkeypatch):
    try:
        check_command(words, tmp_path, monkeypatch)
    except SystemExit as exc:  # argparse's way of rejecting arguments; its message is on stderr
        pytest.fail(f"the argument parser rejected `{shlex.join(words)}` (exit {exc.code})")


def test_readme_python_blocks_compile():
    blocks = fenced_blocks(README, "python")
    assert blocks
    for block in blocks:
        ast.parse(block)


def _expand_braces(path: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    return [p for option in match.group(1).split(",")
            for p in _expand_braces(path[: match.start()] + option + path[match.end():])]


def test_readme_repository_paths_exist():
    pattern = r"(?<![\w./-])((?:launch|ds_configs|bench|tests|pretrain|data_prep|\.ci)/[\w./*-]*(?:\{[\w,]+\}[\w./*-]*)?)"
    paths = {p.rstrip(".") for p in re.findall(pattern, README)}
    assert len(paths) > 10
    missing = [p for p in sorted(paths) for q in _expand_braces(p) if not glob.glob(str(ROOT / q))]
    assert not missing, f"README names paths that do not exist: {missing}"
