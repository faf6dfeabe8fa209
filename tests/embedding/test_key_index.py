"""KeyIndex: insertion-order rows, lookups with duplicates, growth, arbitrary int64 keys."""

from __future__ import annotations

import torch

from ctrflow.embedding.key_index import KeyIndex


def test_rows_follow_insertion_order_across_batches():
    index = KeyIndex()
    rows, new = index.find_or_insert(torch.tensor([30, 10, 20]))
    assert rows.tolist() == [0, 1, 2] and new.all()
    rows, new = index.find_or_insert(torch.tensor([40, 10, 50]))
    assert rows.tolist() == [3, 1, 4]
    assert new.tolist() == [True, False, True]
    assert index.keys().tolist() == [30, 10, 20, 40, 50]


def test_find_returns_minus_one_for_absent_keys_and_handles_duplicates():
    index = KeyIndex()
    index.find_or_insert(torch.tensor([5, 6]))
    assert index.find(torch.tensor([6, 7, 6, 5, 5])).tolist() == [1, -1, 1, 0, 0]
    assert index.num_keys == 2


def test_extreme_and_negative_keys_are_ordinary_keys():
    index = KeyIndex()
    extremes = torch.tensor([2**63 - 1, -(2**63), -1, 0, 2**32 - 1])
    rows, _ = index.find_or_insert(extremes)
    assert rows.tolist() == [0, 1, 2, 3, 4]
    assert index.find(extremes.flip(0)).tolist() == [4, 3, 2, 1, 0]


def test_growth_keeps_every_row_under_many_colliding_inserts():
    generator = torch.Generator().manual_seed(0)
    index = KeyIndex()
    inserted = []
    for _ in range(20):
        batch = torch.unique(torch.randint(-(10**15), 10**15, (3000,), generator=generator))
        batch = batch[index.find(batch) < 0]
        batch = batch[torch.randperm(batch.numel(), generator=generator)]
        index.find_or_insert(batch)
        inserted.append(batch)
    everything = torch.cat(inserted)
    assert index.num_keys == everything.numel()
    assert index.num_buckets >= 2 * index.num_keys  # load stays at or under one half
    assert torch.equal(index.find(everything), torch.arange(everything.numel()))
    assert torch.equal(index.keys(), everything)


def test_keys_sharing_one_home_bucket_all_get_rows():
    index = KeyIndex()
    # multiples of a large power of two share low bits; Fibonacci hashing must still spread or probe them
    keys = torch.arange(1, 200) * (1 << 40)
    rows, _ = index.find_or_insert(keys)
    assert torch.equal(rows, torch.arange(199))
    assert torch.equal(index.find(keys), torch.arange(199))


def test_load_replaces_contents_and_clear_empties():
    index = KeyIndex()
    index.find_or_insert(torch.tensor([1, 2, 3]))
    index.load(torch.tensor([9, 8]))
    assert index.find(torch.tensor([1, 8, 9])).tolist() == [-1, 1, 0]
    index.clear()
    assert index.num_keys == 0
    assert index.find(torch.tensor([9])).tolist() == [-1]
    rows, _ = index.find_or_insert(torch.tensor([7]))
    assert rows.tolist() == [0]
