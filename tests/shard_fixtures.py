"""Small shard directories written through the shard contract, as `python -m data_prep` writes
them (the writer lives in pretrain/synthetic_shards.py, which launch/gpu_check.py also uses)."""
from __future__ import annotations

from pretrain.synthetic_shards import write_shard_dir

__all__ = ["write_shard_dir"]
