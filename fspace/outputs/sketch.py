"""A seeded sketch of square-root probabilities that preserves Hellinger distances.

The function vector of a language model on a probe suite is the matrix ``X`` of
square-root probabilities, one row per (probe, position) and one column per token:
hundreds of millions of values. Its sketch is ``S X / sqrt(2)`` flattened, with ``S`` a
sparse random projection to ``k`` values (CountSketch): every entry ``(i, v)`` of ``X``
is added, with a random sign, to one of ``k`` buckets. Then for two models

    E ||sketch(P) - sketch(Q)||^2 = 1/2 ||sqrt(P) - sqrt(Q)||^2 = sum_i H^2(p_i, q_i),

the squared Hellinger distance summed over rows, with variance about ``2/k`` of its
square, like a dense Gaussian projection (Johnson-Lindenstrauss), but in time linear in
the size of ``X`` and with tables of only ``rows + vocab`` entries.

Bucket and sign of entry ``(i, v)`` come from one table ``T`` over the vocabulary,
read at ``(v + shift_i) mod vocab``, plus an offset and a sign per row: shifting the
table by a random amount per row keeps two rows from sharing their hash pattern (which
would correlate their collisions). Tables are drawn from ``seed`` alone, on the CPU,
so any machine, device or batch size gives the same sketch.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch

ROW_BLOCK = 1 << 12
"""Rows whose offsets, shifts and signs are drawn from one seeded generator call."""


@lru_cache(maxsize=8)
def _vocab_table(seed: int, vocab: int, k: int) -> torch.Tensor:
    """Per token: bucket * 2 + sign bit, twice over so that a shifted read is a slice."""
    gen = torch.Generator().manual_seed(seed * 7919 + 1)
    table = torch.randint(0, 2 * k, (vocab,), generator=gen, dtype=torch.int64)
    return torch.cat([table, table])


@lru_cache(maxsize=64)
def _row_block(seed: int, block: int, vocab: int, k: int) -> torch.Tensor:
    """``(ROW_BLOCK, 3)``: shift, bucket offset and sign bit of each row of one block."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 2 * block + 2)
    shift = torch.randint(0, vocab, (ROW_BLOCK,), generator=gen, dtype=torch.int64)
    offset = torch.randint(0, k, (ROW_BLOCK,), generator=gen, dtype=torch.int64)
    sign = torch.randint(0, 2, (ROW_BLOCK,), generator=gen, dtype=torch.int64)
    return torch.stack([shift, offset, sign], 1)


def _rows_table(seed: int, start: int, count: int, vocab: int, k: int) -> torch.Tensor:
    first, last = start // ROW_BLOCK, (start + count - 1) // ROW_BLOCK
    blocks = torch.cat([_row_block(seed, b, vocab, k) for b in range(first, last + 1)])
    offset = start - first * ROW_BLOCK
    return blocks[offset : offset + count]


def projection(seed: int, start: int, count: int, vocab: int, k: int):
    """Bucket ``(count, vocab)`` and sign ``(count, vocab)`` of rows ``start..``."""
    table = _vocab_table(seed, vocab, k)
    rows = _rows_table(seed, start, count, vocab, k)
    codes = table.unfold(0, vocab, 1)[rows[:, 0]]  # row i reads T[(v + shift_i) mod vocab]
    bucket = (codes // 2 + rows[:, 1:2]) % k
    sign = 1 - 2 * ((codes % 2) ^ rows[:, 2:3])
    return bucket, sign


@lru_cache(maxsize=8)
def _vocab_parts(seed: int, vocab: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bucket and sign of each table entry, and indices ``0..vocab-1`` twice over."""
    table = _vocab_table(seed, vocab, k)[:vocab]
    twice = torch.arange(vocab, dtype=torch.int64).repeat(2)
    return table // 2, (1 - 2 * (table % 2)).float(), twice


def sketch_rows(rows, k: int, seed: int, chunk: int = 256) -> torch.Tensor:
    """The sketch ``(checkpoints, k)`` of one batch of rows of logits (``rows.values``
    of shape ``(checkpoints, rows, vocab)``; rows numbered from ``rows.start``).

    Row ``i`` is rotated by its shift, so that entry ``u`` meets table entry ``u``;
    all rows are then hashed into ``k`` buckets with one shared index, and each row's
    buckets are rotated by its offset and signed before they are summed.
    """
    values = rows.values
    count, n, vocab = values.shape
    device = values.device
    bucket, sign, twice = (t.to(device) for t in _vocab_parts(seed, vocab, k))
    out = torch.zeros(count, k, dtype=torch.float32, device=device)
    scale = 1 / math.sqrt(2)
    positions = torch.arange(k, device=device)
    for s in range(0, n, chunk):
        x = torch.softmax(values[:, s : s + chunk].float(), dim=-1).sqrt_().mul_(scale)
        m = x.shape[1]
        table = _rows_table(seed, rows.start + s, m, vocab, k).to(device)
        # rotated[i, u] = x[i, (u - shift_i) mod vocab]
        index = twice.unfold(0, vocab, 1)[(vocab - table[:, 0]) % vocab]
        rotated = x.gather(2, index.expand(count, m, vocab)).mul_(sign)
        hashed = torch.zeros(count, m, k, device=device).index_add_(2, bucket, rotated)
        # row i's bucket b lands in (b + offset_i) mod k, with the row's sign
        back = (positions[None, :] - table[:, 1:2]) % k
        signs = (1 - 2 * table[:, 2]).float().view(1, m, 1)
        out += (hashed.gather(2, back.expand(count, m, k)) * signs).sum(1)
    return out


def dense_matrix(seed: int, rows: int, vocab: int, k: int) -> torch.Tensor:
    """The projection as a dense ``(k, rows * vocab)`` matrix (for tests; small sizes)."""
    bucket, sign = projection(seed, 0, rows, vocab, k)
    m = torch.zeros(k, rows * vocab)
    m[bucket.reshape(-1), torch.arange(rows * vocab)] = sign.reshape(-1).float()
    return m / math.sqrt(2)
