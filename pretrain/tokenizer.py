"""The byte tokenizer every export ships: ByT5's, speaking the sentinels pretraining used, and the
usage snippet the model card and the README both show.

Hugging Face's ByT5 tokenizer numbers `<extra_id_i>` from 259 up (its 125 extra ids after the
bytes), but google/byt5, and this project's collator, give the i-th masked span id 258 - i: the
ids of bytes 0xFF, 0xFE, ..., which never occur in UTF-8. Only i = 0..10 are such bytes
(0xFF..0xF5), so only `<extra_id_0>`..`<extra_id_10>` are tokens here; `<extra_id_11>` would be
id 247, byte 0xF4, which starts 4-byte UTF-8 characters, so it and higher ones are not tokens and
are encoded as the characters they are spelled with. The ids above the bytes (259..383), which
the 384-row vocabulary has but pretraining never used, decode as special `<unused_k>` tokens
rather than failing.
"""
from __future__ import annotations

from transformers import AddedToken, ByT5Tokenizer

from pretrain.byte_vocab import EOS_ID, MAX_SAFE_SENTINELS, PAD_ID, UNK_ID, VOCAB_SIZE, sentinel_id

_FIRST_UNUSED = sentinel_id(0) + 1


def sentinel_token(i: int) -> str:
    return f"<extra_id_{i}>"


def sentinel_tokenizer() -> ByT5Tokenizer:
    """ByT5's byte tokenizer with `<extra_id_i>` = id 258 - i for i < 11 (module docstring)."""
    # ByT5Tokenizer's own special tokens, as it defines them.
    specials = {PAD_ID: "<pad>", EOS_ID: "</s>", UNK_ID: "<unk>"}
    decoder = {i: AddedToken(t, lstrip=True, rstrip=True, normalized=True, special=False) for i, t in specials.items()}
    sentinels = [sentinel_token(i) for i in range(MAX_SAFE_SENTINELS)]
    unused = [f"<unused_{k}>" for k in range(VOCAB_SIZE - _FIRST_UNUSED)]
    decoder.update({sentinel_id(i): AddedToken(t, special=True, normalized=False) for i, t in enumerate(sentinels)})
    decoder.update({_FIRST_UNUSED + k: AddedToken(t, special=True, normalized=False) for k, t in enumerate(unused)})
    return ByT5Tokenizer(extra_ids=0, added_tokens_decoder=decoder, extra_special_tokens=sentinels + unused)


# How an export's GBSWT5 class is found: the code it ships (`trust_remote_code`), or a package that
# registers model_type gbswt5 with the Auto classes (this project's `pretrain.modeling`, or ETRI's
# `gbswt5`); a plain ByT5 export is transformers' own T5.
LOADERS = ("remote_code", "package", "t5")


def usage_snippet(model_dir: str, loader: str) -> str:
    """Python that loads an export and fills one masked span: the model card's and the README's."""
    if loader not in LOADERS:
        raise ValueError(f"loader {loader!r}: not one of {LOADERS}")
    trust = ", trust_remote_code=True" if loader == "remote_code" else ""
    registers = ("import pretrain.modeling  # registers gbswt5 with the Auto classes, as ETRI's `import gbswt5` does\n"
                 if loader == "package" else "")
    return f'''{registers}from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

model = AutoModelForSeq2SeqLM.from_pretrained("{model_dir}"{trust})
tokenizer = AutoTokenizer.from_pretrained("{model_dir}"{trust})
# <extra_id_i> marks the i-th masked span: id 258 - i, the sentinel pretraining used (i <= 10)
inputs = tokenizer("대한민국은 민주<extra_id_0>이다.", return_tensors="pt")
out = model.generate(**inputs, max_new_tokens=32, eos_token_id=[1, 257])  # stop at </s> or <extra_id_1>
print(tokenizer.decode(out[0], skip_special_tokens=True))  # the text predicted for <extra_id_0>
'''
