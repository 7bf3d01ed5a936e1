"""What a run will do, from its validated config and the shard manifests, building nothing heavy:
`launch/pretrain.py ... --dry-run` prints it, and every launch checks the data part first.

The model is built on torch's meta device (no storage, no weights read; only init_from's
config.json) to count its parameters; memory per GPU is `pretrain/memory_estimate.py`'s.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PretrainedConfig, T5Config, T5ForConditionalGeneration

from data_prep.shard_format import TRAIN, VALIDATION, load_manifest
from data_prep.validation_size import small_validation_warning
from pretrain.checkpoint import CHECKPOINT_DIR, list_tags
from pretrain.config import ConfigError, ModelSettings, ShardInfo, TrainConfig, validate_batch_sizes
from pretrain.memory_estimate import Shape, activation_bytes_per_sequence, largest_layer_params, model_states_bytes
from pretrain.mixture import mixing_counts
from pretrain.model_setup import byt5_preset_config, init_from_source
from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration

BYT5_TOKENS_PER_BATCH = 2**20  # ByT5 (Xue et al. 2022): 1024 sequences of 1024 input ids per step
GIB = 2**30
# DeepSpeed checkpoint bytes per parameter: bf16 weights, fp32 master weights and Adam's two moments.
CHECKPOINT_BYTES_PER_PARAM = 2 + 12


@dataclass(frozen=True)
class DataPlan:
    """Rows per source and split, the batch geometry, and what one epoch of training draws."""

    dirs: list[str]
    train_rows: list[int]
    val_rows: list[int]
    val_bytes: list[int]
    micro: int
    accumulation: int
    world: int
    epoch_counts: list[int]  # samples each source gives one epoch

    @property
    def global_batch(self) -> int:
        return self.micro * self.accumulation * self.world

    @property
    def steps_per_epoch(self) -> float:
        """Optimizer steps per pass of the stream (an epoch is counted in micro batches of all ranks)."""
        return sum(self.epoch_counts) / self.global_batch

    def eval_rows(self, eval_batches: int) -> int:
        """Validation rows one evaluation reads: an equal share per rank, eval.batches micro batches each."""
        return min(sum(self.val_rows) // self.world * self.world, eval_batches * self.micro * self.world)

    def eval_target_bytes(self, eval_batches: int, noise_density: float) -> int:
        rows = sum(self.val_rows)
        return round(sum(self.val_bytes) * self.eval_rows(eval_batches) / rows * noise_density) if rows else 0


def plan_data(config: TrainConfig, world: int) -> DataPlan:
    """The data side of the run; ConfigError (exit 2) if training has nothing to draw from."""
    data = config.run.data
    micro, accumulation, _ = validate_batch_sizes(config.deepspeed, world)
    splits = [load_manifest(d)["splits"] for d in data.train]
    train_rows = [s[TRAIN]["rows"] for s in splits]
    per_draw = micro * world  # what the stream draws per micro step, over all ranks
    epoch = sum(train_rows) // per_draw * per_draw
    if epoch == 0:
        raise ConfigError(f"run.data.train: the training splits of {', '.join(data.train)} hold {sum(train_rows)} rows, "
                          f"fewer than one micro batch over the ranks ({micro} x {world}); nothing to train on")
    try:
        counts = mixing_counts(train_rows, epoch, data.weights, data.temperature_alpha)
    except ValueError as exc:  # a weighted source without rows
        raise ConfigError(f"run.data.weights: {exc} ({data.train})") from None
    return DataPlan(list(data.train), train_rows, [s[VALIDATION]["rows"] for s in splits],
                    [s[VALIDATION]["bytes"] for s in splits], micro, accumulation, world, [int(c) for c in counts])


def small_eval_warning(config: TrainConfig, plan: DataPlan) -> str | None:
    run = config.run
    if not run.eval.batches:
        return None
    rows = plan.eval_rows(run.eval.batches)
    advice = ("raise run.eval.batches" if rows < sum(plan.val_rows) else
              "prepare the shards with a larger --val-fraction or --val-docs")
    return small_validation_warning(plan.eval_target_bytes(run.eval.batches, run.data.noise_density),
                                    f"evaluation ({rows} validation chunks of run.data.train)", advice)


def model_on_meta(settings: ModelSettings) -> torch.nn.Module:
    """The architecture the run trains, without storage: from the preset or init_from's config.json."""
    overrides = dict(settings.overrides)
    found = init_from_source(settings)
    raw = PretrainedConfig.get_config_dict(found[0])[0] if found else {}
    with torch.device("meta"):
        if settings.type == "byt5":
            config = T5Config.from_dict({**raw, **overrides}) if found else byt5_preset_config(settings)
            return T5ForConditionalGeneration(config)
        overrides["z_loss"] = settings.z_loss
        if raw.get("model_type") == "gbswt5":
            config = GBSWT5Config.from_dict({**raw, **overrides})
        elif found:
            from pretrain.model_io import warm_start_config

            config = warm_start_config(T5Config.from_dict(raw), **overrides)
        else:
            config = GBSWT5Config.from_preset(settings.preset, **overrides)
        return GBSWT5ForConditionalGeneration(config)


def parameter_count(model: torch.nn.Module) -> int:
    """Parameters as the run trains them: a plain ByT5's lm_head is its own matrix (model_setup
    unties the one transformers 5 ties on building)."""
    count = sum(p.numel() for p in model.parameters())
    if isinstance(model, T5ForConditionalGeneration) and model.lm_head.weight is model.shared.weight:
        count += model.lm_head.weight.numel()
    return count


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB / 10 else f"{n / 2**20:.1f} MiB"


def _memory_lines(config: TrainConfig, model: torch.nn.Module, params: int, shards: ShardInfo, plan: DataPlan,
                  gpus_per_node: int) -> list[str]:
    zero = config.deepspeed.get("zero_optimization", {})
    stage = zero.get("stage", 0)
    offload_opt = zero.get("offload_optimizer", {}).get("device", "none") == "cpu"
    offload_par = zero.get("offload_param", {}).get("device", "none") == "cpu"
    nodes = max(plan.world // gpus_per_node, 1)
    states = model_states_bytes(stage, params, largest_layer_params(model), min(gpus_per_node, plan.world), nodes,
                                offload_opt, offload_par)
    checkpointing = config.run.model.gradient_checkpointing
    per_seq = activation_bytes_per_sequence(Shape.of(model.config, shards.inputs_length, shards.targets_length),
                                            checkpointing)
    total = states + plan.micro * per_seq
    return [f"memory per GPU (estimate; pretrain/memory_estimate.py): ZeRO-{stage} model states {_gib(states)} over "
            f"{plan.world} GPU(s) + activations {plan.micro} x {_gib(per_seq)}"
            f"{' (gradient checkpointing)' if checkpointing else ''} = {_gib(total)}; "
            f"keep ~20% headroom: a GPU of {_gib(total * 1.2)} or more"]


def plan_lines(config: TrainConfig, shards: ShardInfo, plan: DataPlan, gpus_per_node: int) -> list[str]:
    """The dry run's report, one fact per line."""
    run = config.run
    model = model_on_meta(run.model)
    params = parameter_count(model)
    tokens = plan.global_batch * shards.inputs_length
    epochs = run.max_steps / plan.steps_per_epoch
    lines = [
        f"model: {run.model.type} preset {run.model.preset}, {params:,} parameters"
        f" ({'random init' if run.model.init_from is None else 'from ' + run.model.init_from})",
        f"batch: {plan.micro} per GPU x {plan.accumulation} accumulation x {plan.world} GPU(s) = {plan.global_batch} "
        f"sequences per step = {tokens:,} input tokens ({tokens / BYT5_TOKENS_PER_BATCH:.3g}x ByT5's 2^20)",
        f"per step: {plan.global_batch * (shards.inputs_length + shards.targets_length):,} tokens "
        f"({shards.inputs_length} input + {shards.targets_length} target ids per sequence), "
        f"{plan.global_batch * shards.chunk_bytes:,} bytes of text (chunks of up to {shards.chunk_bytes} bytes)",
        f"epoch: {plan.steps_per_epoch:,.4g} steps over {sum(plan.train_rows):,} training chunks; "
        f"max_steps {run.max_steps:,} = {epochs:.3g} epochs",
    ]
    epoch_total = sum(plan.epoch_counts)
    for d, rows, count, val in zip(plan.dirs, plan.train_rows, plan.epoch_counts, plan.val_rows):
        lines.append(f"  source {d}: {rows:,} train / {val:,} validation chunks, {count / epoch_total:.1%} of each "
                     f"epoch ({count / rows if rows else 0:.2f} passes)")
    lines += _memory_lines(config, model, params, shards, plan, gpus_per_node)
    lines.append(f"evaluation: every {run.eval.interval} steps on {plan.eval_rows(run.eval.batches):,} validation chunks "
                 f"(~{plan.eval_target_bytes(run.eval.batches, run.data.noise_density):,} target bytes)")
    lines += _output_lines(config, params)
    return lines


def _output_lines(config: TrainConfig, params: int) -> list[str]:
    run = config.run
    out = Path(run.output_dir)
    ckpt = out / CHECKPOINT_DIR
    resume = [tag for _, tag in list_tags(ckpt)]
    size = params * CHECKPOINT_BYTES_PER_PARAM
    logs = "metrics.jsonl, loss_curve.png" + (", wandb/" if run.logging.wandb else "") + \
        (", tensorboard/" if run.logging.tensorboard else "")
    return [
        f"output: {out}/ ({'resumes from ' + resume[0] if resume else 'a new run'}): run_config.json, "
        f"model_config.json, {logs}",
        f"checkpoints: {ckpt}/global_stepN every {run.checkpoint.interval} steps"
        f"{' and at the end' if run.checkpoint.save_final else ''}, the last {run.checkpoint.keep_last} kept, "
        f"~{_gib(size)} each ({_gib(size * run.checkpoint.keep_last)} on disk)",
        f"export afterwards: python -m pretrain.export {out} OUT_DIR",
    ]
