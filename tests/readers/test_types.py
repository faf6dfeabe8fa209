"""The Batch contract: CSR views and one rank's share of a global batch."""

from __future__ import annotations

import pytest
import torch

from ctrflow.readers.types import Batch, SparseBatch, SparseInputSpec


def batch() -> Batch:
    # 3 samples x 2 slots; nnz per (sample, slot): [1, 2], [0, 1], [3, 1]
    offsets = torch.tensor([0, 1, 3, 3, 4, 7, 8])
    keys = torch.arange(8) + 100
    return Batch(
        torch.tensor([[1.0], [0.0], [1.0]]), torch.arange(6.0).view(3, 2), {"s": SparseBatch(keys, offsets, 2)}, 2
    )


def test_rows_slices_label_dense_and_the_csr_of_every_input():
    part = batch().rows(1, 3)
    assert part.label.tolist() == [[0.0], [1.0]]
    assert part.dense.tolist() == [[2.0, 3.0], [4.0, 5.0]]
    assert part.sparse["s"].offsets.tolist() == [0, 0, 1, 4, 5]
    assert part.sparse["s"].keys.tolist() == [103, 104, 105, 106, 107]
    assert part.sparse["s"].lengths().tolist() == [[0, 1], [3, 1]]


def test_rows_clip_the_valid_row_count_to_the_slice():
    assert batch().rows(0, 2).size == 2
    assert batch().rows(1, 3).size == 1  # row 2 is padding in the global batch
    assert batch().rows(2, 3).size == 0


def test_sparse_input_spec_names_the_input_in_errors():
    with pytest.raises(ValueError, match=r'Sparse input "s": nnz_per_slot has 1 entries but slot_num is 2'):
        SparseInputSpec("s", 2, (1,))
