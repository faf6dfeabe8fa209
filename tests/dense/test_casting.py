"""Cast: float32 to float16 and back, with the gradient flowing through."""

import pytest
import torch

from ctrflow.dense.layers import Cast
from ctrflow.dense.testing import run_layer_test
from ctrflow.dense.types import LayerError


def test_cast_turns_float32_into_float16_with_a_gradient():
    # float16 keeps 11 significant bits: relative rounding 2^-11 ~ 4.9e-4
    run_layer_test(
        Cast,
        [(4, 5)],
        {},
        expected_output_dtypes=[torch.float16],
        reference=lambda layer, x: x,
        rtol=1e-3,
        atol=1e-3,
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cast_turns_16_bit_floats_into_float32(dtype):
    x = torch.randn(4, 5).to(dtype).requires_grad_(True)
    y = Cast([(4, 5)])(x)
    assert y.dtype == torch.float32
    y.sum().backward()
    assert x.grad.dtype == dtype
    torch.testing.assert_close(x.grad, torch.ones(4, 5, dtype=dtype))


def test_cast_of_an_integer_tensor_is_an_error():
    with pytest.raises(LayerError, match=r'Cast "c": received a torch.int64 tensor'):
        Cast([(2,)], name="c")(torch.ones(2, dtype=torch.long))
