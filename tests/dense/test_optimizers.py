"""Dense optimizers against hand-written float64 update formulas over several steps, and state export."""

import math

import pytest
import torch

from ctrflow.dense.optimizers import OPTIMIZERS, SGD, AdaGrad, Adam, DenseOptimizer, MomentumSGD, Nesterov

STEPS = 4


def gradients(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(5, generator=generator, dtype=torch.float64) for _ in range(STEPS)]


def run(optimizer_cls, lrs, **kwargs):
    w = torch.nn.Parameter(torch.linspace(-1, 1, 5, dtype=torch.float64))
    optimizer = optimizer_cls([w], **kwargs)
    for lr, g in zip(lrs, gradients(), strict=True):
        optimizer.param_groups[0]["lr"] = lr  # the model sets the scheduled rate each step
        w.grad = g.clone()
        optimizer.step()
    return w.detach(), optimizer


LRS = [0.1, 0.05, 0.2, 0.01]
START = torch.linspace(-1, 1, 5, dtype=torch.float64)


def test_sgd_subtracts_lr_times_gradient():
    w, _ = run(SGD, LRS)
    expected = START.clone()
    for lr, g in zip(LRS, gradients(), strict=True):
        expected -= lr * g
    torch.testing.assert_close(w, expected)


def test_momentum_sgd_follows_mom_equals_f_mom_minus_lr_g():
    w, _ = run(MomentumSGD, LRS, momentum_factor=0.9)
    expected, mom = START.clone(), torch.zeros(5, dtype=torch.float64)
    for lr, g in zip(LRS, gradients(), strict=True):
        mom = 0.9 * mom - lr * g
        expected += mom
    torch.testing.assert_close(w, expected)


def test_nesterov_follows_the_spec_update():
    w, _ = run(Nesterov, LRS, momentum_factor=0.8)
    expected, accum = START.clone(), torch.zeros(5, dtype=torch.float64)
    for lr, g in zip(LRS, gradients(), strict=True):
        new = 0.8 * accum - lr * g
        expected += -0.8 * accum + 1.8 * new
        accum = new
    torch.testing.assert_close(w, expected)


def test_adagrad_is_a_real_adagrad_starting_from_initial_accu_value():
    w, _ = run(AdaGrad, LRS, initial_accu_value=0.5, epsilon=1e-6)
    expected, acc = START.clone(), torch.full((5,), 0.5, dtype=torch.float64)
    for lr, g in zip(LRS, gradients(), strict=True):
        acc = acc + g * g
        expected -= lr * g / (acc.sqrt() + 1e-6)
    torch.testing.assert_close(w, expected)


def test_adam_adds_epsilon_after_the_bias_corrected_step():
    w, optimizer = run(Adam, LRS, beta1=0.8, beta2=0.9, epsilon=1e-3)
    expected = START.clone()
    m, v = torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64)
    for t, (lr, g) in enumerate(zip(LRS, gradients(), strict=True), start=1):
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        expected -= lr * math.sqrt(1 - 0.9**t) / (1 - 0.8**t) * m / (v.sqrt() + 1e-3)
    torch.testing.assert_close(w, expected)
    assert optimizer.step_count == STEPS


def test_hugectr_defaults():
    w = [torch.nn.Parameter(torch.zeros(1))]
    assert Adam(w).defaults == {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7}
    assert AdaGrad(w).defaults == {"lr": 0.001, "initial_accu_value": 0.0, "epsilon": 1e-7}
    assert MomentumSGD(w).defaults["momentum_factor"] == 0.0
    assert Nesterov(w).defaults["momentum_factor"] == 0.0
    assert set(OPTIMIZERS) == {"Adam", "AdaGrad", "MomentumSGD", "Nesterov", "SGD"}


def two_params():
    return [torch.nn.Parameter(torch.ones(2, 3)), torch.nn.Parameter(torch.ones(4))]


def step_once(optimizer, params):
    for index, p in enumerate(params):
        p.grad = torch.full_like(p, index + 1.0)
    optimizer.step()


@pytest.mark.parametrize(
    ("optimizer_cls", "names"),
    [(Adam, ["m", "v"]), (AdaGrad, ["accum"]), (MomentumSGD, ["momentum"]), (Nesterov, ["accum"]), (SGD, [])],
)
def test_export_states_flattens_each_state_over_params_in_file_order(optimizer_cls, names):
    params = two_params()
    optimizer = optimizer_cls(params, lr=0.1)
    step_once(optimizer, params)
    states = optimizer.export_states(params)
    assert len(states) == len(names)
    for name, flat in zip(names, states, strict=True):
        expected = torch.cat([optimizer.state[p][name].reshape(-1) for p in params])
        assert flat.dtype == torch.float32 and flat.shape == (10,)
        torch.testing.assert_close(flat, expected)


def test_import_states_restores_adam_moments_and_restarts_the_step_counter():
    params = two_params()
    source = Adam(params, lr=0.1)
    step_once(source, params)
    step_once(source, params)
    target_params = two_params()
    target = Adam(target_params, lr=0.1)
    target.import_states(target_params, source.export_states(params))
    assert target.step_count == 0
    for a, b in zip(target.export_states(target_params), source.export_states(params), strict=True):
        torch.testing.assert_close(a, b)


def test_import_states_with_the_wrong_size_names_the_state():
    params = two_params()
    with pytest.raises(ValueError, match=r"state 'm' has 3 values, expected 10"):
        Adam(params).import_states(params, [torch.zeros(3), torch.zeros(10)])
    with pytest.raises(ValueError, match=r"received 1 state tensor\(s\), expected 2 \(m, v\)"):
        Adam(params).import_states(params, [torch.zeros(10)])


def test_state_dict_keeps_the_step_counter():
    params = two_params()
    optimizer = Adam(params, lr=0.1)
    for _ in range(3):
        step_once(optimizer, params)
    saved = optimizer.state_dict()
    assert saved["step_count"] == 3 and set(saved["state"]) == {0, 1}
    restored = Adam(params, lr=0.1)
    restored.load_state_dict(saved)
    assert restored.step_count == 3
    torch.testing.assert_close(restored.state[params[0]]["m"], optimizer.state[params[0]]["m"])


def test_invalid_hyper_parameters_are_rejected():
    with pytest.raises(ValueError, match=r"Adam: beta1=1.0 is outside \[0, 1\)"):
        Adam(two_params(), beta1=1.0)
    with pytest.raises(ValueError, match=r"AdaGrad: initial_accu_value=-1 is negative"):
        AdaGrad(two_params(), initial_accu_value=-1)
    with pytest.raises(ValueError, match=r"SGD: lr=-0.1 is negative"):
        SGD(two_params(), lr=-0.1)


@pytest.mark.device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_adam_on_cuda_matches_the_cpu_and_exports_cpu_float32():
    cpu, cuda = two_params(), [p.detach().cuda().requires_grad_(True) for p in two_params()]
    cpu_optimizer, cuda_optimizer = Adam(cpu, lr=0.1), Adam(cuda, lr=0.1)
    for _ in range(3):
        step_once(cpu_optimizer, cpu)
        step_once(cuda_optimizer, cuda)
    for a, b in zip(cpu, cuda, strict=True):
        torch.testing.assert_close(a.detach(), b.detach().cpu())
    states = cuda_optimizer.export_states(cuda)
    assert all(s.device.type == "cpu" and s.dtype == torch.float32 for s in states)
    cuda_optimizer.import_states(cuda, states)


# The per-parameter in-place updates the optimizers applied before they updated a group with torch._foreach_*
# ops; on the CPU the foreach ops run these same tensor ops, so the results must be equal bit for bit.
def _sgd_reference(param, grad, state, group, t):
    param.add_(grad, alpha=-group["lr"])


def _momentum_reference(param, grad, state, group, t):
    state["momentum"].mul_(group["momentum_factor"]).add_(grad, alpha=-group["lr"])
    param.add_(state["momentum"])


def _nesterov_reference(param, grad, state, group, t):
    mu, accum = group["momentum_factor"], state["accum"]
    param.add_(accum, alpha=-mu)
    accum.mul_(mu).add_(grad, alpha=-group["lr"])
    param.add_(accum, alpha=1.0 + mu)


def _adagrad_reference(param, grad, state, group, t):
    state["accum"].addcmul_(grad, grad)
    param.addcdiv_(grad, state["accum"].sqrt().add_(group["epsilon"]), value=-group["lr"])


def _adam_reference(param, grad, state, group, t):
    beta1, beta2 = group["beta1"], group["beta2"]
    state["m"].mul_(beta1).add_(grad, alpha=1.0 - beta1)
    state["v"].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    step_size = group["lr"] * (1.0 - beta2**t) ** 0.5 / (1.0 - beta1**t)
    param.addcdiv_(state["m"], state["v"].sqrt().add_(group["epsilon"]), value=-step_size)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(
    ("optimizer_cls", "kwargs", "reference"),
    [
        (SGD, {}, _sgd_reference),
        (MomentumSGD, {"momentum_factor": 0.9}, _momentum_reference),
        (Nesterov, {"momentum_factor": 0.8}, _nesterov_reference),
        (AdaGrad, {"initial_accu_value": 0.5, "epsilon": 1e-6}, _adagrad_reference),
        (Adam, {"beta1": 0.8, "beta2": 0.9, "epsilon": 1e-3}, _adam_reference),
    ],
)
def test_group_update_equals_the_per_parameter_update_bit_for_bit(optimizer_cls, kwargs, reference, dtype):
    generator = torch.Generator().manual_seed(1)
    shapes = [(3, 4), (7,), (2, 2, 2), (1,)]
    starts = [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]
    params = [torch.nn.Parameter(start.clone()) for start in starts]
    expected = [start.clone() for start in starts]
    # a parameter without a gradient is skipped, as before
    params.append(torch.nn.Parameter(torch.ones(2, dtype=dtype)))
    optimizer = optimizer_cls(params, lr=0.1, **kwargs)
    states = [optimizer._initial_state(p, optimizer.param_groups[0]) for p in expected]
    for t, lr in enumerate(LRS, start=1):
        optimizer.param_groups[0]["lr"] = lr
        grads = [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]
        for param, grad in zip(params, grads, strict=False):
            param.grad = grad.clone()
        optimizer.step()
        group = {**optimizer.param_groups[0], "lr": lr}
        for param, grad, state in zip(expected, grads, states, strict=True):
            reference(param, grad, state, group, t)
    for param, want in zip(params, expected, strict=False):
        assert torch.equal(param.detach(), want)
    assert torch.equal(params[-1].detach(), torch.ones(2, dtype=dtype))
    for param, state in zip(params, states, strict=False):
        for name, value in state.items():
            assert torch.equal(optimizer.state[param][name], value)


def test_a_subclass_that_implements_only_update_still_steps_each_parameter():
    class HalfStep(SGD):
        def _update_group(self, params, grads, states, group):  # the base's per-parameter loop
            DenseOptimizer._update_group(self, params, grads, states, group)

        def _update(self, param, grad, state, group):
            param.add_(grad, alpha=-0.5 * group["lr"])

    params = two_params()
    optimizer = HalfStep(params, lr=0.2)
    step_once(optimizer, params)
    assert torch.equal(params[0].detach(), torch.full((2, 3), 0.9))
    assert torch.equal(params[1].detach(), torch.full((4,), 0.8))
