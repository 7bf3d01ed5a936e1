"""Where training metrics go: console, a JSONL file in the run directory, wandb, TensorBoard.

Only rank 0 logs. wandb runs offline unless credentials are configured (WANDB_API_KEY or a
netrc entry) and never overrides an explicit WANDB_MODE, so a cluster node without network
still trains and `wandb sync` uploads the run later.
"""
from __future__ import annotations

import json
import logging
import netrc
import os
from pathlib import Path
from typing import Any

from pretrain.config import LoggingSettings

LOG = logging.getLogger(__name__)
METRICS_FILE = "metrics.jsonl"
NOT_CURVES = ("eta_s",)  # in the file and on the console, but no curve for wandb/TensorBoard
LOSS_CURVE_FILE = "loss_curve.png"


def _wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


class MetricsLogger:
    def __init__(self, run_dir: Path, settings: LoggingSettings, config: dict, *, enabled: bool, run_name: str,
                 max_steps: int | None = None):
        self.enabled = enabled
        self.max_steps = max_steps
        self.path = run_dir / METRICS_FILE
        self._wandb = None
        self._tb = None
        if not enabled:
            return
        if settings.wandb:
            import wandb

            os.environ.setdefault("WANDB_MODE", "online" if _wandb_has_credentials() else "offline")
            try:
                self._wandb = wandb.init(
                    project=settings.wandb_project, name=run_name, dir=str(run_dir), config=config,
                    id=run_name, resume="allow",
                    # The console already gets every record; wandb's own banner and end-of-run
                    # history table would repeat them.
                    settings=wandb.Settings(silent=True),
                )
            except Exception as exc:  # an unreachable server must not cost the training run
                LOG.warning("wandb is off for this run: %s (metrics.jsonl still records everything)", exc)
        if settings.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        """Append one record ({"step": N, "kind": "train"|"eval"|..., metrics...})."""
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
        LOG.info("%s", format_record(record, self.max_steps))
        numbers = {k: v for k, v in _numbers(record).items() if k not in NOT_CURVES}
        prefixed = {f"{record.get('kind', 'train')}/{k}": v for k, v in numbers.items()}
        if self._wandb is not None:
            self._wandb.log(prefixed, step=record["step"])
        if self._tb is not None:
            for key, value in prefixed.items():
                self._tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self._wandb is not None:
            self._wandb.finish()
        if self._tb is not None:
            self._tb.close()


def _numbers(record: dict[str, Any]) -> dict[str, int | float]:
    return {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}


def format_duration(seconds: float) -> str:
    """3h05m, 4m07s, 12s."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_record(record: dict[str, Any], max_steps: int | None = None) -> str:
    """The console line of a record: `step N/max_steps kind: name value ...`, MFU in percent,
    the time left as a duration."""
    step = f"{record['step']}/{max_steps}" if max_steps else f"{record['step']}"
    parts = []
    for key, value in _numbers(record).items():
        if key == "mfu":
            parts.append(f"mfu {100 * value:.1f}%")
        elif key == "eta_s":
            parts.append(f"eta {format_duration(value)}")
        else:
            parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    return f"step {step} {record.get('kind', '')}: " + "  ".join(parts)


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics file; for a step logged twice (a resumed run) the last one wins."""
    if not path.exists():
        return []
    latest: dict[tuple[str, int], dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            latest[(record.get("kind", "train"), record["step"])] = record
    return sorted(latest.values(), key=lambda r: (r["step"], r.get("kind", "")))


def plot_loss_curve(metrics_path: Path, out_path: Path) -> None:
    """Training and evaluation loss against step, written atomically as a PNG; nothing (a log
    line) where matplotlib is not installed, as on a GPU machine that only measures."""
    try:
        import matplotlib
    except ImportError:
        LOG.info("no %s: matplotlib is not installed (metrics.jsonl has every point)", out_path.name)
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, style in (("train", "-"), ("eval", "o-")):
        points = [(r["step"], r["loss"]) for r in records if r.get("kind") == kind and "loss" in r]
        if points:
            ax.plot(*zip(*points), style, label=f"{kind} loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy per target byte")
    ax.grid(alpha=0.3)
    ax.legend()
    tmp = out_path.with_name(f".{out_path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, out_path)
