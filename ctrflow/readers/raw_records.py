"""`RawRecords`: one batch of Raw records as stored, decoded on the device they are copied to.

A `Loader` that feeds a GPU copies whatever the reader hands it. A decoded one-hot batch is about three times
the size of its records (int64 keys and int64 offsets against int32 keys), and decoding it on the CPU costs
the reader threads interpreter time that the training thread needs to launch its kernels. So a Raw reader
feeding a GPU (`RawReader.device_batches`) checks each batch's records on the CPU, hands over their 4-byte
words untouched, and the split into label, dense (ln(v + 1) for int32 files), keys and offsets runs as a
few element-wise kernels on the device, on the loader's copy stream.

The decoded batch equals the CPU reader's (formats spec §2) up to the last bit of ln: label, keys, offsets
and the zero padding of a short batch are identical.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ctrflow.readers.types import Batch, DataSpec, SparseBatch

_UINT32_MASK = 0xFFFFFFFF


class RawRecords:
    """The records of one Raw batch, as int32 words `[rows, label_dim + dense_dim + total_slots]`.

    Args:
        words: the records (a NumPy view of the memory map, or a tensor).
        spec: the dataset's label and dense widths and sparse inputs.
        float_label_dense: label and dense words are float32 bit patterns (else int32 values).
        batch_size: rows of the decoded batch; rows past `words.shape[0]` are zero padding with empty slots.
    """

    def __init__(
        self, words: np.ndarray | torch.Tensor, spec: DataSpec, *, float_label_dense: bool, batch_size: int
    ) -> None:
        self.words, self.spec = words, spec
        self.float_label_dense, self.batch_size = float_label_dense, batch_size

    def pin_memory(self) -> RawRecords:
        """The words copied once into page-locked memory (the only CPU copy a batch costs)."""
        pinned = torch.empty(tuple(self.words.shape), dtype=torch.int32, pin_memory=True)
        if isinstance(self.words, np.ndarray):
            np.copyto(pinned.numpy(), self.words)  # NumPy releases the interpreter for the copy
        else:
            pinned.copy_(self.words)
        return RawRecords(pinned, self.spec, float_label_dense=self.float_label_dense, batch_size=self.batch_size)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The decoded `Batch` on `device` (kernels queued on the current stream)."""
        words = self.words if isinstance(self.words, torch.Tensor) else torch.from_numpy(np.array(self.words))
        return decode(words.to(device, non_blocking=non_blocking), self.spec, self.float_label_dense, self.batch_size)


def decode(words: torch.Tensor, spec: DataSpec, float_label_dense: bool, batch_size: int) -> Batch:
    """Split int32 record words into a `Batch` of `batch_size` rows on the words' device (formats spec §2)."""
    rows, width = words.shape
    label_dim, dense_dim = spec.label_dim, spec.dense_dim
    values = words[:, : label_dim + dense_dim]
    if float_label_dense:
        floats = values.view(torch.float32)
        label, dense = floats[:, :label_dim].contiguous(), floats[:, label_dim:].contiguous()
    else:  # float(v) labels, ln(v + 1) dense, in float32 as the CPU reader computes them
        label = values[:, :label_dim].to(torch.float32)
        dense = values[:, label_dim:].to(torch.float32).add_(1.0).log_()
    pad = batch_size - rows
    sparse: dict[str, SparseBatch] = {}
    first = label_dim + dense_dim
    for sparse_input in spec.sparse:
        last = first + sparse_input.num_slots
        keys = words[:, first:last].to(torch.int64).bitwise_and_(_UINT32_MASK).reshape(-1)  # uint32 bit patterns
        entries = batch_size * sparse_input.num_slots
        offsets = torch.arange(entries + 1, dtype=torch.int64, device=words.device)
        if pad:  # padding rows hold empty slots: their offsets stay at the last real key
            offsets.clamp_(max=rows * sparse_input.num_slots)
        sparse[sparse_input.name] = SparseBatch(keys, offsets, sparse_input.num_slots)
        first = last
    if first != width:
        raise ValueError(
            f"Raw records of {width} words, but the dataset's label_dim + dense_dim + slots is {first}; "
            "decode records with the DataSpec they were read with."
        )
    if pad:
        label, dense = F.pad(label, (0, 0, 0, pad)), F.pad(dense, (0, 0, 0, pad))
    return Batch(label, dense, sparse, rows)
