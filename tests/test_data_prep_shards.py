"""The shard writer: shard boundaries, the save_to_disk layout, checksums."""
from __future__ import annotations

import datasets
import pyarrow as pa

from data_prep.pack import Chunks
from data_prep.shard_format import sha256_file
from data_prep.shards import ShardWriter


def chunks_of(rows: list[bytes], lead: bytes = b"") -> Chunks:
    """`rows` laid out in one buffer after `lead`, bytes outside every chunk (the second part of a
    split Chunks starts that way)."""
    bounds = [len(lead)]
    for row in rows:
        bounds.append(bounds[-1] + len(row))
    return Chunks(lead + b"".join(rows), bounds)


def test_shard_boundaries_and_layout(tmp_path):
    writer = ShardWriter(tmp_path / "train", shard_rows=3)
    writer.add(chunks_of([f"청크 {i}".encode() for i in range(10)], lead="앞".encode()), "a")
    writer.add(chunks_of([b"x", b"y"]), "b")
    writer.end_shard()  # a source's short final chunk ends its shard
    writer.add(chunks_of([b"z"]), "c")
    shards = writer.finish()
    assert [s["rows"] for s in shards] == [3, 3, 3, 3, 1]
    assert [s["file"] for s in shards] == [f"data-{i:05d}-of-00005.arrow" for i in range(5)]
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [s["file"] for s in shards] + ["dataset_info.json", "state.json"]
    for shard in shards:
        assert sha256_file(tmp_path / "train" / shard["file"]) == shard["sha256"]
    ds = datasets.load_from_disk(str(tmp_path / "train"))
    assert ds["chunk"] == [f"청크 {i}".encode() for i in range(10)] + [b"x", b"y", b"z"]
    assert ds["source"] == ["a"] * 10 + ["b", "b", "c"]
    with pa.ipc.open_stream(tmp_path / "train" / shards[0]["file"]) as reader:  # IPC stream format
        assert reader.schema.names == ["chunk", "source"]
        assert reader.schema.field("chunk").type == pa.binary()


def test_empty_split_has_one_empty_shard(tmp_path):
    shards = ShardWriter(tmp_path / "validation", shard_rows=10).finish()
    assert [s["rows"] for s in shards] == [0]
    assert len(datasets.load_from_disk(str(tmp_path / "validation"))) == 0
