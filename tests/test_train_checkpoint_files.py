"""Checkpoint files without a training run: weights_only loading with DeepSpeed's allowlist, the
refusal of a pickle that names code, checksums recorded while writing and checked on reading,
and the rank count a checkpoint was written by."""
from __future__ import annotations

import json

import pytest
import torch
from deepspeed.runtime.fp16.loss_scaler import LossScaler
from deepspeed.runtime.zero.config import ZeroStageEnum
from deepspeed.utils.tensor_fragment import fragment_address

from pretrain.checkpoint import MARKER, _file_sizes, damage, written_world_size
from pretrain.checkpoint_engine import CHECKSUM, SafeCheckpointEngine, UnsafeCheckpointError, file_checksum, load


class Payload:
    """Unpickling this creates the file `path`: the stand-in for any code a crafted file runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def optimizer_states() -> dict:
    """What DeepSpeed's ZeRO optimizer states hold besides tensors (see DEEPSPEED_GLOBALS)."""
    return {"optimizer_state_dict": {
        "loss_scaler": LossScaler(1.0), "zero_stage": ZeroStageEnum.gradients,
        "param_slice_mappings": [{"w": fragment_address(numel=4, start=0)}],
        "single_partition_of_fp32_groups": [torch.arange(6.0)],
    }}


@pytest.mark.parametrize("zipfile", [True, False])
def test_saved_files_are_checksummed_while_written_and_load_back_with_weights_only(tmp_path, zipfile):
    engine = SafeCheckpointEngine()
    engine.zipfile_serialization = zipfile
    path = tmp_path / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    engine.save(optimizer_states(), str(path))
    assert engine.take_written() == {str(path): file_checksum(path)} and engine.take_written() == {}
    loaded = engine.load(str(path))["optimizer_state_dict"]
    assert loaded["zero_stage"] is ZeroStageEnum.gradients and loaded["loss_scaler"].cur_scale == 1.0
    assert loaded["param_slice_mappings"] == [{"w": fragment_address(numel=4, start=0)}]
    assert torch.equal(loaded["single_partition_of_fp32_groups"][0], torch.arange(6.0))


def test_a_pickle_naming_code_is_refused_with_the_file_named_and_nothing_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "mp_rank_00_model_states.pt"
    torch.save({"module": {"w": torch.zeros(2)}, "extra": Payload(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match=rf"{path} asks the unpickler to call \S*open, which no "):
        load(path)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):
        SafeCheckpointEngine().load(str(path))
    assert not marker.exists()


def make_checkpoint(root, step, files, **marker):
    tag = root / f"global_step{step}"
    tag.mkdir(parents=True)
    for name, payload in files.items():
        (tag / name).write_bytes(payload)
    sizes = _file_sizes(tag)
    (tag / MARKER).write_text(json.dumps({"step": step, "files": sizes, **marker}))
    return tag


def test_a_same_size_bit_flip_is_damage_when_checksums_are_verified(tmp_path):
    tag = make_checkpoint(tmp_path, 4, {"optim_states.pt": bytes(range(256)) * 4})
    checksums = {"optim_states.pt": file_checksum(tag / "optim_states.pt")}
    (tag / MARKER).write_text(json.dumps({**json.loads((tag / MARKER).read_text()), CHECKSUM: checksums}))
    assert damage(tmp_path, "global_step4", verify_checksums=True) is None
    data = bytearray((tag / "optim_states.pt").read_bytes())
    data[600] ^= 0x10
    (tag / "optim_states.pt").write_bytes(bytes(data))
    assert damage(tmp_path, "global_step4") is None  # the size check alone sees nothing
    assert damage(tmp_path, "global_step4", verify_checksums=True) == (
        f"{tag / 'optim_states.pt'} does not match the xxh3_64 checksum recorded when it was written")


def test_each_local_rank_verifies_its_share_of_the_files(tmp_path, monkeypatch):
    tag = make_checkpoint(tmp_path, 4, {"a.pt": b"a", "b.pt": b"b"}, **{CHECKSUM: {"a.pt": "0", "b.pt": "0"}})
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert damage(tmp_path, "global_step4", verify_checksums=True).startswith(str(tag / "b.pt"))
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert damage(tmp_path, "global_step4", verify_checksums=True).startswith(str(tag / "a.pt"))


def test_the_rank_count_comes_from_the_marker_else_the_zero_partitions(tmp_path):
    make_checkpoint(tmp_path, 1, {"mp_rank_00_model_states.pt": b"m"}, world_size=4)
    assert written_world_size(tmp_path, "global_step1") == 4
    partitions = {f"bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt": b"o" for r in range(2)}
    make_checkpoint(tmp_path, 2, {"mp_rank_00_model_states.pt": b"m", **partitions})  # an older marker
    assert written_world_size(tmp_path, "global_step2") == 2
    make_checkpoint(tmp_path, 3, {"mp_rank_00_model_states.pt": b"m"})  # ZeRO-0: nothing tells
    assert written_world_size(tmp_path, "global_step3") is None


def test_checksums_off_saves_plainly_and_records_nothing(tmp_path):
    engine = SafeCheckpointEngine(checksums=False)
    path = tmp_path / "optim_states.pt"
    engine.save(optimizer_states(), str(path))
    assert engine.take_written() == {}
    assert engine.load(str(path))["optimizer_state_dict"]["zero_stage"] is ZeroStageEnum.gradients
