"""The corpus-quality command-line values: `--quality` specs, checked against the run's sources."""
from __future__ import annotations

from data_prep.quality import PRESETS

DEFAULT_QUALITY = "curated"


class OptionError(ValueError):
    """A bad option value (unknown preset, unusable evaluation file): one line, exit status 2."""


def parse_quality(specs: list[str] | None, sources: set[str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(preset of unnamed sources, ((source, preset), ...)) from `--quality` values.

    Each value is a comma-separated list of PRESET (every source not named) and NAME=PRESET items,
    e.g. `--quality web` or `--quality curated,kcbert=web --quality news=off`; the last item for a
    name wins."""
    default, per_source = DEFAULT_QUALITY, {}
    for spec in specs or []:
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, preset = item.rpartition("=")
            if preset not in PRESETS:
                where = f" for source '{name}'" if name else ""
                raise OptionError(f"--quality: unknown preset '{preset}'{where} in '{spec}' "
                                  f"(choose {', '.join(PRESETS)})")
            if not name:
                default = preset
            elif name not in sources:
                raise OptionError(f"--quality: no input source is named '{name}' (sources: {', '.join(sorted(sources))})")
            else:
                per_source[name] = preset
    return default, tuple(sorted(per_source.items()))
