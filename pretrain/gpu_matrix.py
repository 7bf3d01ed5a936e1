"""Which training configurations launch/gpu_check.py measures, in what order, and what each costs.

The matrix is planned as it runs: each stage reads what the stages before it measured. Only
combinations that can win are run; the others are recorded as skipped with the reason:

1. The float32 reference: the first setting again with bf16 off (same seed, data and steps),
   so that bf16's loss can be compared step by step.
2. Attention: every implementation at one micro-batch (the second of `micros`), compile and
   checkpointing off. The fastest one is used from here on: no later setting changes the
   attention kernel's work, so none can reverse the ranking.
3. Micro-batches: each of `micros`, then the largest that fits (extrapolated from the peak memory
   measured so far, a multiple of `micro_step`). Gradient checkpointing only where a micro-batch
   does not fit without it: where it fits, recomputing the forward adds about a third of the
   compute and cannot be faster.
4. Plain ByT5 at the best attention: its first micro-batch, then the largest that fits by its
   measured memory per example (before compile: the budget may not reach the end of the plan).
5. torch.compile of the blocks, on the best attention and micro-batch only; if it wins, ByT5's
   best setting compiled too, so each model is compared at its best.
6. The loss kernels (chunked; Liger's on CUDA where liger_kernel imports) at the best setting so
   far. At 384 output ids the logits are small, so little is expected; they are measured because
   a fused loss is the usual cure for logits memory.

A setting is run only if its estimated time (setup measured so far, plus the training time of
the last comparable run scaled by FLOPs per step) fits the time left; otherwise it is recorded
as skipped for the deadline, and smaller ones after it may still run.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Iterator

OK, OOM, SKIPPED = "ok", "oom", "skipped"
GIB = 2**30
CHECKPOINTING_COST = 4 / 3  # the forward runs twice: about a third more compute
MEMORY_HEADROOM = 0.9  # the allocator's fragmentation and temporary buffers need the rest


@dataclasses.dataclass(frozen=True)
class Setting:
    model: str = "gbswt5"  # gbswt5 | byt5
    micro: int = 16
    attention: str = "sdpa"
    compile: bool = False
    checkpointing: bool = False
    dtype: str = "bf16"  # bf16 | fp32
    loss: str = "logits"  # run.model.loss: logits | chunked | liger

    @property
    def name(self) -> str:
        extras = [x for x, on in (("compile", self.compile), ("checkpointing", self.checkpointing),
                                  (f"{self.loss} loss", self.loss != "logits")) if on]
        return " ".join([self.model, self.dtype, f"micro {self.micro or 'any'}", self.attention, *extras])

    def overrides(self) -> list[str]:
        """The --set arguments that make a run of this setting."""
        return [f"model.type={self.model}", f"train_micro_batch_size_per_gpu={self.micro}",
                f"model.attention={self.attention}", f"model.compile={str(self.compile).lower()}",
                f"model.gradient_checkpointing={str(self.checkpointing).lower()}",
                f"bf16.enabled={str(self.dtype == 'bf16').lower()}", f"model.loss={self.loss}"]


@dataclasses.dataclass(frozen=True)
class Skip:
    setting: Setting
    reason: str


@dataclasses.dataclass(frozen=True)
class MatrixOptions:
    micros: tuple[int, ...] = (16, 32, 48)
    attentions: tuple[str, ...] = ("sdpa", "eager", "flex")
    compile: bool = True
    byt5: bool = True
    memory_gib: float | None = None  # the accelerator's memory; None (CPU): no largest-that-fits
    liger: bool = False  # liger_kernel importable and CUDA there
    micro_step: int = 8


def find(results: list[dict], setting: Setting) -> dict | None:
    """The result of `setting`, if it was planned already (run or skipped)."""
    return next((r for r in results if r["setting"] == dataclasses.asdict(setting)), None)


def _ran(results: list[dict], **fields) -> list[dict]:
    return [r for r in results if r["status"] == OK and all(r["setting"][k] == v for k, v in fields.items())]


def _fastest(results: list[dict], **fields) -> dict | None:
    ran = [r for r in _ran(results, **fields) if r["examples_per_s"] is not None]
    return max(ran, key=lambda r: r["examples_per_s"], default=None)


def memory_fit(points: list[tuple[int, float]]) -> tuple[float, float] | None:
    """(fixed GiB, GiB per example): the least-squares line through (micro, peak GiB) points of
    at least two micro-batches, or None."""
    if len({m for m, _ in points}) < 2:
        return None
    micro_mean = statistics.fmean(m for m, _ in points)
    peak_mean = statistics.fmean(p for _, p in points)
    slope = (sum((m - micro_mean) * (p - peak_mean) for m, p in points)
             / sum((m - micro_mean) ** 2 for m, _ in points))
    return peak_mean - slope * micro_mean, slope


def largest_micro(points: list[tuple[int, float]], memory_gib: float, step: int,
                  fixed_gib: float | None = None) -> int | None:
    """The largest multiple of `step` whose peak memory, fitted as fixed + per-example x micro
    through the (micro, peak GiB) points, stays within MEMORY_HEADROOM of `memory_gib`. One
    point is enough when the fixed part (the model states) is known; None if nothing fits."""
    fit = memory_fit(points)
    if fit is None and len(points) == 1 and fixed_gib is not None:
        fit = fixed_gib, (points[0][1] - fixed_gib) / points[0][0]
    if fit is None or fit[1] <= 0:
        return None
    fixed, per_example = fit
    largest = math.floor((MEMORY_HEADROOM * memory_gib - fixed) / per_example / step) * step
    return largest if largest >= step else None


def _memory_points(results: list[dict], **fields) -> list[tuple[int, float]]:
    return [(r["setting"]["micro"], r["peak_mem_gb"]) for r in _ran(results, **fields) if r["peak_mem_gb"]]


def _grow(results: list[dict], base: Setting, options: MatrixOptions, above: int,
          fixed_gib: float | None = None) -> Iterator[Setting | Skip]:
    """The largest micro-batch of `base`'s kind that fits, and one step down if it does not."""
    kind = dict(model=base.model, attention=base.attention, checkpointing=base.checkpointing, dtype="bf16",
                compile=base.compile)
    what = dataclasses.replace(base, micro=0)
    if options.memory_gib is None:
        yield Skip(what, "largest micro-batch: no accelerator memory figure to extrapolate from (CPU)")
        return
    points = _memory_points(results, **kind)
    micro = largest_micro(points, options.memory_gib, options.micro_step, fixed_gib)
    if micro is None:
        yield Skip(what, f"largest micro-batch: not enough measured points ({len(points)}) to extrapolate from")
        return
    if micro <= above:
        yield Skip(what, f"largest micro-batch that fits ({micro}) is not above {above}, measured already")
        return
    for candidate in (micro, micro - options.micro_step):
        if candidate <= above:
            return
        setting = dataclasses.replace(base, micro=candidate)
        yield setting
        if (find(results, setting) or {}).get("status") != OOM:
            return


def plan(options: MatrixOptions, results: list[dict]) -> Iterator[Setting | Skip]:
    """The settings to measure, in order; reads `results` (appended by the caller) as it goes."""
    micros, attentions = options.micros, options.attentions
    first = Setting(micro=micros[0], attention=attentions[0])
    yield first
    yield dataclasses.replace(first, dtype="fp32")
    compared = micros[min(1, len(micros) - 1)]
    for attention in attentions:
        yield Setting(micro=compared, attention=attention)
    best = _fastest(results, model="gbswt5", micro=compared, dtype="bf16")
    attention = best["setting"]["attention"] if best else attentions[0]
    for other in attentions:
        if other != attention:
            yield Skip(Setting(micro=0, attention=other),
                       f"other micro-batches, compile: {attention} was faster at micro {compared}")

    needed_checkpointing = False
    for micro in micros:
        plain = Setting(micro=micro, attention=attention)
        yield plain
        status = (find(results, plain) or {}).get("status")
        checkpointed = dataclasses.replace(plain, checkpointing=True)
        if status == OOM:
            needed_checkpointing = True
            yield checkpointed
        elif status == OK:
            yield Skip(checkpointed, "fits without checkpointing, which recomputes the forward (~1/3 more compute)")
        else:
            yield Skip(checkpointed, f"only where the run without it is out of memory; that one is {status}")
    fitting = [r["setting"]["micro"] for r in _ran(results, model="gbswt5", attention=attention, dtype="bf16",
                                                   checkpointing=False, compile=False)]
    yield from _grow(results, Setting(attention=attention), options, max(fitting, default=0))
    # The model states (the fit's fixed part) are the same with checkpointing, with plain ByT5
    # too (GBSWT5-large has ByT5-large's T5 dimensions): one point of those then gives the line.
    fit = memory_fit(_memory_points(results, model="gbswt5", attention=attention, dtype="bf16",
                                    checkpointing=False, compile=False))
    fixed = fit[0] if fit else None
    if needed_checkpointing:
        yield from _grow(results, Setting(attention=attention, checkpointing=True), options, max(micros), fixed)

    # ByT5 before compile and the loss kernels: the comparison with it matters more than they
    # do, and the budget may not reach the end of the plan.
    if options.byt5:
        byt5 = Setting(model="byt5", micro=micros[0], attention=attention)
        yield byt5
        yield from _grow(results, byt5, options, micros[0], fixed)
    else:
        yield Skip(Setting(model="byt5", micro=0, attention=attention), "ByT5 is off for this run (BYT5=off)")

    best = _fastest(results, model="gbswt5", attention=attention, dtype="bf16", compile=False)
    best_setting = Setting(**best["setting"]) if best else Setting(micro=micros[0], attention=attention)
    compiled = dataclasses.replace(best_setting, compile=True)
    if options.compile:
        yield compiled
    else:
        yield Skip(compiled, "compile is off for this run (COMPILE=off)")
    winner = _fastest(results, model="gbswt5", attention=attention, dtype="bf16", loss="logits")
    byt5_best = _fastest(results, model="byt5", dtype="bf16")
    if options.byt5 and byt5_best and winner and winner["setting"]["compile"]:
        yield dataclasses.replace(Setting(**byt5_best["setting"]), compile=True)  # ByT5 at its best kernels too
    kernels = Setting(**winner["setting"]) if winner else best_setting
    yield dataclasses.replace(kernels, loss="chunked")
    liger = dataclasses.replace(kernels, loss="liger")
    yield liger if options.liger else Skip(liger, "liger_kernel is not importable here, or no CUDA: it would be chunked")


class Deadline:
    """The time budget of the whole check."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.end = clock() + seconds

    def left(self) -> float:
        return self.end - self.clock()


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Guesses for what no run has measured yet, and the float32 slowdown of the device."""

    setup_s: float = 30.0
    train_s: float = 30.0
    compile_s: float = 120.0
    fp32_slowdown: float = 8.0  # dense float32 (no TF32) against bf16 tensor cores


def estimate_s(setting: Setting, flops_per_step: float, results: list[dict], cost: CostModel) -> float:
    """Seconds this setting will take: setup as measured so far, training as the last comparable
    run's (bf16, no compile) scaled by model FLOPs per step, plus compile and recomputation."""
    ran = [r for r in results if r["status"] == OK and r["setup_s"] is not None]
    setup = statistics.median(r["setup_s"] for r in ran) if ran else cost.setup_s
    base = [r for r in ran if r["setting"]["dtype"] == "bf16" and not r["setting"]["compile"]
            and not r["setting"]["checkpointing"] and r["flops_per_step"]]
    train = base[-1]["train_s"] * flops_per_step / base[-1]["flops_per_step"] if base else cost.train_s
    if setting.dtype == "fp32":
        train *= cost.fp32_slowdown
    if setting.checkpointing:
        train *= CHECKPOINTING_COST
    if setting.compile:
        train += cost.compile_s
    return setup + train
