"""Korean corpora -> cleaned, deduplicated, packed Arrow shards (`python -m data_prep`)."""

__version__ = "0.1.0"
