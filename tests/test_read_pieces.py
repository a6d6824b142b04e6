"""Reading a tensor file and hashing it in one pass, piece by piece, as the bytes arrive.

The checksum is the store's SHA-256 in the tensors' name order, whatever the order of
the file; a byte changed anywhere must still be found and the file named."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save

from fspace.errors import CheckpointError
from fspace.store import files, reading

PIECE = reading._PIECE


def _tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        # Several pieces, and a tail shorter than one; names out of name order.
        "z.weight": torch.randn(3 * PIECE // 4 + 5, generator=gen),
        "a.bias": torch.randn(7, generator=gen).to(torch.float16),
        "m.count": torch.tensor(3),  # 0-dim
        "e.empty": torch.empty(0, 4),
        "i.index": torch.arange(PIECE // 2 + 3, dtype=torch.int16),
    }


def _fresh(tensors):
    return {k: torch.full_like(v, 7) for k, v in tensors.items()}


READERS = {
    "read_into": lambda path, t: (reading.read_into(path, out := _fresh(t)), out),
    "read_copy": lambda path, t: tuple(reversed(reading.read_copy(path))),
}


@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
def test_pieces_read_and_hashed_equal_the_whole(tmp_path, reader):
    tensors = _tensors()
    path = files.write(tmp_path / "t.safetensors", tensors, {"kind": "test"})
    meta, out = READERS[reader](path, tensors)
    assert meta["kind"] == "test"
    for name, value in tensors.items():
        torch.testing.assert_close(out[name], value, rtol=0, atol=0)


def test_running_checksum_equals_checksum():
    tensors, meta = _tensors(), {"kind": "test", "format_version": 2}
    h = files.Checksum()
    for name in sorted(tensors):
        raw = tensors[name].reshape(-1).view(torch.uint8).numpy()
        h.tensor(name, tensors[name])
        for i in range(0, len(raw), 1000):
            h.update(raw[i : i + 1000])
    assert h.finish(meta) == files.checksum(tensors, meta)


def _offsets(path, tensors):
    """File offset of the first and last byte, and of a byte in a middle piece."""
    header, _ = files.read_header(path)
    start = len(path.read_bytes()) - sum(v.numel() * v.element_size() for v in tensors.values())
    begin, end = header["z.weight"]["data_offsets"]
    return {
        "first piece": start + begin,
        "middle piece": start + begin + PIECE + 11,
        "last byte": start + end - 1,
        "first tensor in name order": start + header["a.bias"]["data_offsets"][0],
    }


@pytest.mark.parametrize(
    "where", ["first piece", "middle piece", "last byte", "first tensor in name order"]
)
@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
def test_a_changed_byte_anywhere_is_found_and_the_file_named(tmp_path, reader, where):
    tensors = _tensors()
    path = files.write(tmp_path / "t.safetensors", tensors, {"kind": "test"})
    data = bytearray(path.read_bytes())
    data[_offsets(path, tensors)[where]] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"t\.safetensors: checksum mismatch"):
        READERS[reader](path, tensors)
    reading.read_into(path, _fresh(tensors), verify=False)  # the bytes themselves read


@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
def test_files_of_the_first_format_read_in_pieces(tmp_path, reader):
    """Format 1 checksummed the tensors only, not the metadata."""
    tensors = _tensors()
    body = {"kind": "checkpoint", "format_version": 1, "checksum": files.checksum(tensors)}
    path = tmp_path / "old.safetensors"
    path.write_bytes(save(tensors, metadata={"fspace": json.dumps(body)}))
    meta, out = READERS[reader](path, tensors)
    assert meta["format_version"] == 1
    for name, value in tensors.items():
        torch.testing.assert_close(out[name], value, rtol=0, atol=0)
