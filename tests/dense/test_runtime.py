"""Every built-in layer at run time: any batch size, and bfloat16 autocast close to float32."""

import pytest
import torch

from ctrflow.dense.layers import LAYERS

# (layer type, bottom shapes for batch b, config or config for batch b); losses are covered in test_losses.py
CASES = [
    ("BatchNorm", lambda b: [(b, 6)], {}),
    ("Reshape", lambda b: [(b, 3, 4)], {"leading_dim": 12}),
    ("Concat", lambda b: [(b, 2), (b, 3)], {}),
    ("Dropout", lambda b: [(b, 6)], {}),
    ("ELU", lambda b: [(b, 6)], {}),
    ("InnerProduct", lambda b: [(b, 6)], {"num_output": 8}),
    ("FusedInnerProduct", lambda b: [(b, 6)], {"num_output": 8}),
    ("Interaction", lambda b: [(b, 4), (b, 3, 4)], {}),
    ("ReLU", lambda b: [(b, 6)], {}),
    ("ReLUHalf", lambda b: [(b, 6)], {}),
    ("GRU", lambda b: [(3 * b, 5)], lambda b: {"num_output": 4, "batchsize": b, "SeqLength": 3, "vector_size": 5}),
    ("MatrixMultiply", lambda b: [(b, 3, 4), (b, 4, 2)], {}),
    ("Scale", lambda b: [(b, 3)], {"axis": 0, "factor": 2}),
    ("FusedReshapeConcat", lambda b: [(b, 3, 2), (b, 3, 4)], {}),
    ("FusedReshapeConcatGeneral", lambda b: [(b, 3, 2), (b, 3, 4)], {}),
    ("Softmax", lambda b: [(b, 6)], {}),
    ("PReLU_Dice", lambda b: [(b, 6)], {}),
    ("ReduceMean", lambda b: [(b, 6)], {}),
    ("Sub", lambda b: [(b, 6), (b, 6)], {}),
    ("Gather", lambda b: [(b, 6)], {"indices": [0, 2]}),
    ("Sigmoid", lambda b: [(b, 6)], {}),
    ("Slice", lambda b: [(b, 6)], {"ranges": [[0, 3], [2, 6]]}),
    ("WeightMultiply", lambda b: [(b, 3)], {"weight_dims": [3, 4]}),
    ("FmOrder2", lambda b: [(b, 12)], {"out_dim": 4}),
    ("Add", lambda b: [(b, 6), (b, 6)], {}),
    ("ReduceSum", lambda b: [(b, 6)], {}),
    ("MultiCross", lambda b: [(b, 6)], {"num_layers": 2}),
    ("Cast", lambda b: [(b, 6)], {}),
    ("ElementwiseMultiply", lambda b: [(b, 6), (b, 6)], {}),
]
NON_LOSS = {name for name, cls in LAYERS.items() if not name.endswith("Loss")}


def test_cases_cover_every_non_loss_layer():
    assert {name for name, _, _ in CASES} == NON_LOSS


def config_for(config, batch):
    return config(batch) if callable(config) else config


def as_tuple(result):
    return (result,) if isinstance(result, torch.Tensor) else tuple(result)


@pytest.mark.parametrize(("layer_type", "shapes", "config"), CASES, ids=[c[0] for c in CASES])
def test_a_layer_built_for_batch_4_runs_on_batch_6(layer_type, shapes, config):
    built = LAYERS[layer_type](shapes(4), **config_for(config, 4))
    run = LAYERS[layer_type](shapes(6), **config_for(config, 6))
    outputs = as_tuple(built(*[torch.randn(s) for s in shapes(6)]))
    assert [tuple(o.shape) for o in outputs] == run.output_shapes


@pytest.mark.parametrize(("layer_type", "shapes", "config"), CASES, ids=[c[0] for c in CASES])
def test_bfloat16_autocast_stays_close_to_float32_and_back_propagates(layer_type, shapes, config):
    layer = LAYERS[layer_type](
        shapes(8), **config_for(config, 8)
    ).eval()  # eval: no dropout noise, running BN statistics
    inputs = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes(8))]
    expected = as_tuple(layer(*inputs))
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = as_tuple(layer(*leaves))
    # bfloat16 has an 8-bit mantissa (relative step 2^-8 ~ 4e-3); sums of <= 12 terms stay within 5e-2
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.float(), e.float(), rtol=5e-2, atol=5e-2)
    torch.stack([g.float().sum() for g in got if g.requires_grad]).sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in leaves if x.grad is not None)


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.device
@needs_cuda
@pytest.mark.parametrize(("layer_type", "shapes", "config"), CASES, ids=[c[0] for c in CASES])
def test_on_cuda_float16_autocast_matches_float32_on_the_cpu(layer_type, shapes, config):
    layer = LAYERS[layer_type](shapes(8), **config_for(config, 8)).eval()
    inputs = [torch.randn(s, generator=torch.Generator().manual_seed(i)) for i, s in enumerate(shapes(8))]
    expected = as_tuple(layer(*inputs))
    layer.cuda()
    leaves = [x.cuda().requires_grad_(True) for x in inputs]
    with torch.autocast("cuda", dtype=torch.float16):
        got = as_tuple(layer(*leaves))
    # float16 has an 11-bit mantissa (relative step 2^-11 ~ 5e-4); sums of <= 12 terms stay within 1e-2
    for g, e in zip(got, expected, strict=True):
        assert g.is_cuda
        torch.testing.assert_close(g.float().cpu(), e.float(), rtol=1e-2, atol=1e-2)
    torch.stack([g.float().sum() for g in got if g.requires_grad]).sum().backward()
    assert all(torch.isfinite(x.grad).all() for x in leaves if x.grad is not None)
