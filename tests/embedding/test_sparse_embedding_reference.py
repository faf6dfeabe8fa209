"""SparseEmbedding against the float64 reference: every kind × combiner × optimizer × update type."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ctrflow.embedding import EmbeddingConfig, SparseEmbedding, SparseOptimizerConfig
from tests.embedding.reference_embedding import ReferenceEmbedding, one_hot_batch, random_batch

# float32 table vs float64 reference over a few steps of O(1) values: rounding stays far below 1e-5
ATOL, RTOL = 1e-5, 1e-5

KINDS = {
    "distributed": {"kind": "distributed"},
    "localized": {"kind": "localized"},
    "localized_slot_sizes": {"kind": "localized", "slot_size_array": (40, 30, 50)},
    "one_hot": {"kind": "one_hot", "slot_size_array": (7, 5, 9)},
    "hybrid": {"kind": "hybrid", "slot_size_array": (7, 5, 9)},
}
OPTIMIZERS = [
    ("sgd", "global", {}),
    ("sgd", "local", {"atomic_update": False}),
    ("momentum_sgd", "global", {"momentum_factor": 0.9}),
    ("momentum_sgd", "global", {"momentum_factor": 0.0}),
    ("momentum_sgd", "local", {"momentum_factor": 0.9}),
    ("nesterov", "global", {"momentum_factor": 0.9}),
    ("nesterov", "local", {"momentum_factor": 0.9}),
    ("adagrad", "global", {"initial_accu_value": 0.1}),
    ("adagrad", "local", {"initial_accu_value": 0.0}),
    ("adam", "global", {}),
    ("adam", "local", {}),
    ("adam", "lazy_global", {}),
]


def make_config(kind: str, combiner: str, optimizer: SparseOptimizerConfig, vec: int = 4) -> EmbeddingConfig:
    return EmbeddingConfig(
        name="emb",
        bottom="data1",
        num_slots=3,
        embedding_vec_size=vec,
        combiner=combiner,  # type: ignore[arg-type]
        workspace_size_per_gpu_in_mb=1,
        optimizer=optimizer,
        **KINDS[kind],
    )


def make_batch(config: EmbeddingConfig, generator: torch.Generator, batch_size: int = 6):
    if config.kind in ("one_hot", "hybrid"):
        return one_hot_batch(generator, batch_size, config.slot_size_array, max_nnz=3)
    return random_batch(generator, batch_size, config.num_slots, max_nnz=3, key_low=-6, key_high=30)


def assert_table_matches(embedding: SparseEmbedding, reference: ReferenceEmbedding) -> None:
    keys, vectors = (t.cpu() for t in embedding.dump()[:2])
    assert sorted(keys.tolist()) == sorted(reference.table)
    expected = np.stack([reference.table[k] for k in keys.tolist()])
    np.testing.assert_allclose(vectors.double().numpy(), expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("combiner", ["sum", "mean"])
@pytest.mark.parametrize(("optimizer", "update_type", "extra"), OPTIMIZERS)
def test_training_steps_match_the_float64_reference(kind, combiner, optimizer, update_type, extra):
    config = make_config(kind, combiner, SparseOptimizerConfig(optimizer, update_type, **extra))
    check_training_against_reference(config, "cpu")


def check_training_against_reference(
    config: EmbeddingConfig, device: str, steps: int = 4, batch_size: int = 6, *, announce: bool = False
) -> None:
    """Train `steps` batches on `device` and compare outputs and the whole table after every step.

    `announce`: tell the table each step's learning rate before its forward, as `LocalRunner` does.
    """
    generator = torch.Generator().manual_seed(7)
    embedding = SparseEmbedding(config, device=device, generator=torch.Generator().manual_seed(1))
    reference = ReferenceEmbedding(config)
    lr, grad_scale = 0.05, 0.5
    for _ in range(steps):
        batch = make_batch(config, generator, batch_size)
        if announce:
            embedding.announce_step(lr)
        out = embedding(batch.to(device)).cpu()
        reference.adopt(*[t.cpu() for t in embedding.dump()[:2]])  # initial values of keys this forward inserted
        np.testing.assert_allclose(out.detach().double().numpy(), reference.forward(batch), atol=ATOL, rtol=RTOL)
        upstream = torch.randn(out.shape, generator=generator)
        (out * upstream).sum().backward()
        embedding.step(lr, grad_scale=grad_scale)
        grads = reference.backward(batch, upstream.double().numpy())
        reference.step({k: grad_scale * g for k, g in grads.items()}, lr)
        assert_table_matches(embedding, reference)


@pytest.mark.parametrize(("optimizer", "update_type", "extra"), [o for o in OPTIMIZERS if o[1] == "global"])
def test_announced_steps_match_the_float64_reference(optimizer, update_type, extra):
    config = make_config("one_hot", "sum", SparseOptimizerConfig(optimizer, update_type, **extra))
    check_training_against_reference(config, "cpu", announce=True)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("combiner", ["sum", "mean"])
def test_evaluation_matches_the_reference_with_unseen_keys(kind, combiner):
    config = make_config(kind, combiner, SparseOptimizerConfig("sgd"))
    generator = torch.Generator().manual_seed(3)
    embedding = SparseEmbedding(config, generator=torch.Generator().manual_seed(2))
    reference = ReferenceEmbedding(config)
    embedding(make_batch(config, generator, batch_size=2))
    reference.adopt(*embedding.dump()[:2])
    held = embedding.num_keys
    embedding.eval()
    batch = make_batch(config, generator, batch_size=8)  # hash kinds: mostly unseen keys
    out = embedding(batch)
    assert embedding.num_keys == held
    np.testing.assert_allclose(out.detach().double().numpy(), reference.forward(batch), atol=ATOL, rtol=RTOL)


def test_gradients_of_two_forwards_before_one_step_are_summed():
    config = make_config("distributed", "mean", SparseOptimizerConfig("adagrad", "local", initial_accu_value=0.5))
    generator = torch.Generator().manual_seed(11)
    embedding = SparseEmbedding(config, generator=torch.Generator().manual_seed(4))
    reference = ReferenceEmbedding(config)
    grads: dict[int, np.ndarray] = {}
    for _ in range(2):
        batch = make_batch(config, generator)
        out = embedding(batch)
        reference.adopt(*embedding.dump()[:2])
        upstream = torch.randn(out.shape, generator=generator)
        (out * upstream).sum().backward()
        for key, g in reference.backward(batch, upstream.double().numpy()).items():
            grads[key] = grads.get(key, 0.0) + g
    embedding.step(0.1)
    reference.step(grads, 0.1)
    assert_table_matches(embedding, reference)
