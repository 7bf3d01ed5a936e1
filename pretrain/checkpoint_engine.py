"""How checkpoint files are written and read: never by running code a file names, with checksums.

DeepSpeed 0.19 reads its checkpoints with ``torch.load(weights_only=False)`` (TorchCheckpointEngine
and zero_to_fp32), which runs whatever a pickle's ``__reduce__`` names. Here every file is read
with ``weights_only=True`` and an allowlist of the few DeepSpeed classes its optimizer states hold;
a file naming anything else is refused (UnsafeCheckpointError, naming the file), never executed.
The engine also hashes each file (xxh3-64) as it writes it, so each rank checksums its own
partitions in passing and ``complete.json`` records them without reading the checkpoint back.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import xxhash
from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine
from deepspeed.runtime.fp16.loss_scaler import LossScaler
from deepspeed.runtime.zero.config import ZeroStageEnum
from deepspeed.utils.tensor_fragment import fragment_address

# Everything DeepSpeed's files pickle besides tensors and builtin containers, found with
# torch.serialization.get_unsafe_globals_in_checkpoint over ZeRO 0-3 checkpoints, bf16 and fp32.
DEEPSPEED_GLOBALS = [LossScaler, ZeroStageEnum, fragment_address]
CHECKSUM = "xxh3_64"
_READ_BLOCK = 16 << 20


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint file names code for the unpickler to run; it is refused, not loaded."""


def load(path: str | os.PathLike, map_location: Any = None, *, mmap: bool = False) -> Any:
    """`torch.load` with weights_only=True and the DeepSpeed allowlist."""
    with torch.serialization.safe_globals(DEEPSPEED_GLOBALS):
        try:
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as exc:
            named = re.search(r"GLOBAL ([\w.]+)", str(exc))
            if named is None:  # damaged, not hostile: the caller's fallback handles it
                raise
            raise UnsafeCheckpointError(
                f"{path} asks the unpickler to call {named.group(1)}, which no DeepSpeed checkpoint holds; "
                "refusing to load it (the file was not written by this training, or was altered)"
            ) from None


def file_checksum(path: Path) -> str:
    digest = xxhash.xxh3_64()
    with path.open("rb") as handle:
        while block := handle.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


class _HashingWriter:
    """A write-only file object that hashes what passes through (no fileno: torch must use write)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.digest = xxhash.xxh3_64()

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()


class SafeCheckpointEngine(TorchCheckpointEngine):
    """DeepSpeed's default engine, loading with weights_only and checksumming what it saves."""

    def __init__(self, config_params: Any = None, *, checksums: bool = True) -> None:
        super().__init__(config_params)
        self.checksums = checksums
        self.written: dict[str, str] = {}  # absolute path -> checksum, since the last take_written()

    def save(self, state_dict: Any, path: str) -> None:
        if not self.checksums:
            super().save(state_dict, path)
            return
        with open(path, "wb") as raw:
            writer = _HashingWriter(raw)
            torch.save(state_dict, writer, _use_new_zipfile_serialization=self.zipfile_serialization)
        self.written[os.path.abspath(path)] = writer.digest.hexdigest()

    def load(self, path: str, map_location: Any = None) -> Any:
        return load(path, map_location)

    def take_written(self) -> dict[str, str]:
        written, self.written = self.written, {}
        return written


def install(engine: Any, *, checksums: bool = True) -> SafeCheckpointEngine:
    """Put a SafeCheckpointEngine in place of the DeepSpeed engine's default one (idempotent)."""
    current = engine.checkpoint_engine
    if isinstance(current, SafeCheckpointEngine):
        current.checksums = checksums
        return current
    if type(current) is not TorchCheckpointEngine or engine.load_universal_checkpoint():
        # The others save asynchronously (complete.json would come first) or read with torch.load
        # directly (universal checkpoints).
        raise RuntimeError(f"DeepSpeed's {current.name} / universal checkpoints are not supported: "
                           "remove the checkpoint writer and load_universal settings from the DeepSpeed config")
    engine.checkpoint_engine = SafeCheckpointEngine(engine._config, checksums=checksums)
    return engine.checkpoint_engine


class _WeightsOnlyTorch(types.ModuleType):
    """`torch` as one module sees it, with `load` replaced by the safe one."""

    def __init__(self) -> None:
        super().__init__("torch")

    def __getattr__(self, name: str) -> Any:
        return getattr(torch, name)

    @staticmethod
    def load(f: Any, map_location: Any = None, *, mmap: bool = False, **_ignored: Any) -> Any:
        return load(f, map_location, mmap=mmap)


@contextlib.contextmanager
def weights_only_zero_to_fp32() -> Iterator[None]:
    """Within the block, DeepSpeed's zero_to_fp32 reads files through `load` (it calls torch.load
    with weights_only=False and offers no engine to pass)."""
    module = importlib.import_module("deepspeed.utils.zero_to_fp32")
    module.torch = _WeightsOnlyTorch()
    try:
        yield
    finally:
        module.torch = torch
