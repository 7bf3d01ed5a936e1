"""The training run's environment set-up: DeepSpeed's JIT op cache per environment."""
from __future__ import annotations

import os
import sysconfig

from pretrain.process_group import op_cache_per_environment


def cache_dir(monkeypatch, *, cxx: str | None = None, include: str | None = None) -> str:
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    if cxx is None:
        monkeypatch.delenv("CXX", raising=False)
    else:
        monkeypatch.setenv("CXX", cxx)
    paths = dict(sysconfig.get_paths())
    if include is not None:
        paths["include"] = include
    monkeypatch.setattr(sysconfig, "get_paths", lambda: paths)
    op_cache_per_environment()
    return os.environ["TORCH_EXTENSIONS_DIR"]


def test_each_compile_environment_gets_its_own_op_cache(monkeypatch):
    # The op's compile command names $CXX and the environment's include paths: where they differ,
    # sharing one build directory made ninja rebuild at every switch.
    default = cache_dir(monkeypatch)
    assert cache_dir(monkeypatch) == default
    assert cache_dir(monkeypatch, cxx="g++-12") != default
    assert cache_dir(monkeypatch, include="/other/python/include/python3.11") != default


def test_a_cache_directory_the_user_set_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    op_cache_per_environment()
    assert os.environ["TORCH_EXTENSIONS_DIR"] == str(tmp_path)
