"""Modules imported on first use (importlib's LazyLoader), for those that cost time to import.

Every *_kernels module imports numba (about 0.4 s, and ~1 s more to start it): the CLI and a run
without the steps that use them never touch them, so they must not pay for it, while the step code
reads as with a plain import.
"""
from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """Module `name`, executed when one of its attributes is first read (at once if already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
