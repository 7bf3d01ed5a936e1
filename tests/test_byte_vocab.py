"""Byte ids and sentinels."""
import numpy as np

from pretrain.byte_vocab import decode, encode, sentinel_id


def test_sentinels_descend_from_258_and_encode_roundtrips():
    assert [sentinel_id(i) for i in range(3)] == [258, 257, 256]
    data = "대한민국 헌법\n".encode()
    ids = encode(data)
    assert ids.min() >= 3 and ids.max() <= 258
    assert decode(np.concatenate([ids, [1, 0]])) == data
