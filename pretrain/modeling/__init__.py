"""GBSWT5 model package; importing it registers the model with transformers' Auto classes."""
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM

from .configuration_gbswt5 import GBSWT5Config
from .modeling_gbswt5 import (
    ATTENTION_DEFAULT, ATTENTION_FLEX, ATTENTION_SDPA, GBST, GBSWT5ForConditionalGeneration, LOSS_IMPLEMENTATIONS,
    fused_span_loss, link_bias_tables, span_loss,
)

AutoConfig.register(GBSWT5Config.model_type, GBSWT5Config, exist_ok=True)
AutoModel.register(GBSWT5Config, GBSWT5ForConditionalGeneration, exist_ok=True)
AutoModelForSeq2SeqLM.register(GBSWT5Config, GBSWT5ForConditionalGeneration, exist_ok=True)

__all__ = [
    "ATTENTION_DEFAULT", "ATTENTION_FLEX", "ATTENTION_SDPA", "GBST", "GBSWT5Config", "GBSWT5ForConditionalGeneration",
    "LOSS_IMPLEMENTATIONS", "fused_span_loss", "link_bias_tables", "span_loss",
]
