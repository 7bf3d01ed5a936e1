"""Where `--data` points: a local copy of KLUE's release, a `datasets` directory, or the hub.

    DIR/klue-nli-v1.1_train.json, DIR/klue-nli-v1.1_dev.json, ...   (or DIR/klue-nli-v1.1/...,
                                                                     as in the KLUE repository)
    DIR/dataset_dict.json or DIR/nli/dataset_dict.json              (`DatasetDict.save_to_disk`)
    klue                                                            (`load_dataset("klue", "nli")`)
"""
from __future__ import annotations

import json
from pathlib import Path

from pretrain.evaluate.tasks import DataError, Example, Task, hub_examples, release_examples

HUB_DATASET = "klue"
RELEASE_VERSIONS = ("v1.1", "v1")
# The release calls the evaluation split `dev`; the hub calls it `validation`.
_HUB_SPLIT = {"dev": "validation"}
_RELEASE_SPLIT = {"validation": "dev"}


def _release_file(root: Path, task: Task, split: str) -> tuple[Path | None, list[Path]]:
    """(the release file of `split`, every release file of the task) under `root`."""
    found = []
    for version in RELEASE_VERSIONS:
        stem = f"klue-{task.name}-{version}"
        for folder in (root, root / stem):
            found += sorted(folder.glob(f"{stem}_*.json"))
            wanted = folder / f"{stem}_{_RELEASE_SPLIT.get(split, split)}.json"
            if wanted.is_file():
                return wanted, found
    return None, found


def _read_release(task: Task, path: Path) -> list[Example]:
    try:
        content = json.loads(path.read_bytes())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return release_examples(task, content, str(path))


def _disk_split(root: Path, task: Task, split: str) -> list[Example]:
    from datasets import load_from_disk

    folder = root / task.name if (root / task.name / "dataset_dict.json").is_file() else root
    splits = load_from_disk(str(folder))
    name = split if split in splits else _HUB_SPLIT.get(split, _RELEASE_SPLIT.get(split, split))
    if name not in splits:
        raise DataError(f"{folder}: no split {split!r} for {task.name} (it has {sorted(splits)})")
    return hub_examples(task, splits[name], f"{folder} {name}")


def _hub_split(name: str, task: Task, split: str) -> list[Example]:
    import datasets

    hub_split = _HUB_SPLIT.get(split, split)
    try:
        rows = datasets.load_dataset(name, task.name, split=hub_split)
    except ValueError as exc:  # an unknown split names the ones there are
        raise DataError(f"hub dataset {name}/{task.name}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # no network, no such dataset: the hub client's own exception types
        raise DataError(f"hub dataset {name}/{task.name} could not be loaded ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); offline, pass a directory with "
                        f"KLUE's release files (klue-{task.name}-v1.1_train.json, ...) instead") from None
    return hub_examples(task, rows, f"{name}/{task.name} {hub_split}")


def load_split(data: str, task: Task, split: str) -> list[Example]:
    """The examples of `split` (`train`, `dev`/`validation`) of `task` from `data`."""
    root = Path(data).expanduser()
    if root.is_dir():
        path, release = _release_file(root, task, split)
        if path is not None:
            return _read_release(task, path)
        if release:
            raise DataError(f"{root}: no {split} split for {task.name} (found {', '.join(p.name for p in release)}; "
                            f"expected klue-{task.name}-v1.1_{_RELEASE_SPLIT.get(split, split)}.json)")
        if (root / "dataset_dict.json").is_file() or (root / task.name / "dataset_dict.json").is_file():
            return _disk_split(root, task, split)
        raise DataError(f"{root}: no KLUE {task.name} data (neither klue-{task.name}-v1.1_{{train,dev}}.json "
                        f"nor a datasets directory with dataset_dict.json)")
    if data == HUB_DATASET or data.endswith(f"/{HUB_DATASET}"):
        return _hub_split(data, task, split)
    raise DataError(f"--data {data}: no such directory (pass KLUE's release files, a datasets directory, "
                    f"or {HUB_DATASET!r} for the hub dataset)")
