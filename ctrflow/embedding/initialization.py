"""Initial embedding vectors that depend only on the table seed and the key (semantics spec §3.4 values).

v3.5 pre-fills every row from curand at start-up, so a key's initial vector depends on which row it lands
in, that is on the insertion order and the GPU count. ctrflow draws each key's vector from a counter-based
hash of (seed, key, column): the same key starts from the same vector whatever the number of ranks, the
order keys arrive in, or whether the table was reloaded from a snapshot. The distribution is v3.5's:
U(-0.05, 0.05), or U(±sqrt(1/slot_size)) for tables with a slot_size_array.
"""

from __future__ import annotations

import torch

_CHUNK_ROWS = 1 << 16  # rows hashed at once: bounds the int64 intermediates to CHUNK x vec


def _signed(value: int) -> int:
    """A uint64 constant as the int64 with the same bits (torch has no uint64 arithmetic)."""
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX_1 = _signed(0xBF58476D1CE4E5B9)
_MIX_2 = _signed(0x94D049BB133111EB)
_COLUMN = _signed(0xD6E8FEB86659FD93)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (>> on int64 is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def keyed_uniform(keys: torch.Tensor, seed: int, width: int) -> torch.Tensor:
    """U(-1, 1) float32 `[len(keys), width]`: a splitmix64 hash of (seed, key, column) per element.

    int64 multiplication wraps modulo 2^64 on every device torch runs on, which is what the mixer needs.
    """
    keys = keys.to(torch.int64)
    columns = torch.arange(width, dtype=torch.int64, device=keys.device) * _COLUMN
    parts = []
    for start in range(0, keys.numel(), _CHUNK_ROWS):
        x = keys[start : start + _CHUNK_ROWS, None] * _GOLDEN + columns[None, :] + seed
        x = (x ^ _shift_right(x, 30)) * _MIX_1
        x = (x ^ _shift_right(x, 27)) * _MIX_2
        x = x ^ _shift_right(x, 31)
        parts.append(_shift_right(x, 40).to(torch.float32) * (2.0 / (1 << 24)) - 1.0)
    if not parts:
        return torch.empty(0, width, device=keys.device)
    return torch.cat(parts)
