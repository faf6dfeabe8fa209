"""Dense optimizers (semantics spec §4.2) as `torch.optim.Optimizer` subclasses.

The model sets `param_groups[i]["lr"]` from the learning-rate schedule before every step; gradients
arrive already divided by the loss scaler. Each optimizer keeps HugeCTR's update formula:

* Adam: `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`,
  `w −= lr·sqrt(1−β2ᵗ)/(1−β1ᵗ)·m/(sqrt(v) + ε)` (ε after the bias-corrected step, TF-style).
* AdaGrad: `acc += g²`, `w −= lr·g/(sqrt(acc) + ε)`, `acc` starting at `initial_accu_value`
  (v3.5 silently runs MomentumSGD instead and ignores `initial_accu_value`).
* SGD: `w −= lr·g`.
* MomentumSGD: `mom = f·mom − lr·g`, `w += mom`.
* Nesterov: `a_new = μ·a − lr·g`, `w += −μ·a + (1+μ)·a_new`.

Each optimizer updates a parameter group at once with `torch._foreach_*` ops (a few kernel launches for
all tensors instead of several per tensor), in the same order of operations as the formulas above.

`export_states(params)` / `import_states(params, states)` convert to and from the dense optimizer-state
file's layout (formats spec §5.4): each state flattened over all parameters in dense-file order. The
step counter `t` (per optimizer, as in v3.5) is kept in `state_dict()`; v3.5's file does not hold it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import torch
from torch.optim import Optimizer


class DenseOptimizer(Optimizer):
    """Base of the HugeCTR dense optimizers: one shared step counter and named per-parameter states.

    Subclasses list their states in `state_names` (file order) and implement `_update_group` (all the
    parameters of a group with gradients at once) or `_update` (one parameter).
    """

    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], defaults: dict[str, Any]) -> None:
        if defaults["lr"] < 0:
            raise ValueError(f"{type(self).__name__}: lr={defaults['lr']} is negative; pass lr >= 0.")
        super().__init__(params, defaults)
        self.step_count = 0
        """Steps taken so far (HugeCTR's `t`, one counter per optimizer); 0 before the first step."""

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state plus `"step_count"`."""
        state = super().state_dict()
        state["step_count"] = self.step_count
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` returned (a dict without `"step_count"` restarts the counter at 0)."""
        state_dict = dict(state_dict)
        self.step_count = int(state_dict.pop("step_count", 0))
        super().load_state_dict(state_dict)

    def _initial_state(self, param: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {name: torch.zeros_like(param, memory_format=torch.preserve_format) for name in self.state_names}

    def _param_state(self, param: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[param]
        if not state:
            state.update(self._initial_state(param, group))
        return state

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.step_count = self.step_count + 1
        for group in self.param_groups:
            params, grads, states = [], [], []
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise TypeError(f"{type(self).__name__} takes dense gradients; embeddings use sparse optimizers.")
                params.append(param)
                grads.append(param.grad)
                states.append(self._param_state(param, group))
            if params:
                self._update_group(params, grads, states, group)
        return loss

    def _update_group(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        group: dict[str, Any],
    ) -> None:
        """Update the parameters of `group` that have gradients; by default one `_update` per parameter."""
        for param, grad, state in zip(params, grads, states, strict=True):
            self._update(param, grad, state, group)

    def _update(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    def _group_of(self, param: torch.Tensor) -> dict[str, Any]:
        for group in self.param_groups:
            if any(p is param for p in group["params"]):
                return group
        raise ValueError(f"{type(self).__name__}: a parameter of shape {list(param.shape)} is not in this optimizer.")

    def export_states(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each state (in `state_names` order) flattened over `params` (dense-file order), float32 on CPU."""
        states = []
        for name in self.state_names:
            parts = [self._param_state(p, self._group_of(p))[name].detach().reshape(-1) for p in params]
            flat = torch.cat(parts) if parts else torch.zeros(0)
            states.append(flat.to("cpu", torch.float32))
        return states

    def import_states(self, params: Sequence[torch.Tensor], states: Sequence[torch.Tensor], step: int = 0) -> None:
        """Load states from the dense optimizer-file layout; the step counter becomes `step`.

        v3.5's file has no step counter: after loading a HugeCTR file Adam's bias correction restarts at t=1.
        """
        if len(states) != len(self.state_names):
            raise ValueError(
                f"{type(self).__name__}: received {len(states)} state tensor(s), expected {len(self.state_names)} "
                f"({', '.join(self.state_names) or 'none'})."
            )
        total = sum(p.numel() for p in params)
        for name, flat in zip(self.state_names, states, strict=True):
            if flat.numel() != total:
                raise ValueError(
                    f"{type(self).__name__}: state {name!r} has {flat.numel()} values, expected {total} (one per "
                    "dense weight). Check that the file belongs to this model."
                )
            offset = 0
            for param in params:
                target = self._param_state(param, self._group_of(param))[name]
                chunk = flat.reshape(-1)[offset : offset + param.numel()]
                target.copy_(chunk.reshape(param.shape).to(target.device, target.dtype))
                offset += param.numel()
        self.step_count = step


class SGD(DenseOptimizer):
    """`w −= lr·g`.

    Args:
        params: the dense parameters.
        lr: learning rate (the model overwrites it each step).
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 0.001) -> None:
        super().__init__(params, {"lr": lr})

    def _update_group(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        group: dict[str, Any],
    ) -> None:
        torch._foreach_add_(params, grads, alpha=-group["lr"])


class MomentumSGD(DenseOptimizer):
    """`mom = momentum_factor·mom − lr·g`; `w += mom`.

    Args:
        params: the dense parameters.
        lr: learning rate.
        momentum_factor: the momentum factor f (HugeCTR's Python default 0.0).
    """

    state_names = ("momentum",)

    def __init__(
        self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 0.001, momentum_factor: float = 0.0
    ) -> None:
        super().__init__(params, {"lr": lr, "momentum_factor": momentum_factor})

    def _update_group(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        group: dict[str, Any],
    ) -> None:
        momentum = [state["momentum"] for state in states]
        torch._foreach_mul_(momentum, group["momentum_factor"])
        torch._foreach_add_(momentum, grads, alpha=-group["lr"])
        torch._foreach_add_(params, momentum)


class Nesterov(DenseOptimizer):
    """`a_new = μ·a − lr·g`; `w += −μ·a + (1+μ)·a_new`.

    Args:
        params: the dense parameters.
        lr: learning rate.
        momentum_factor: μ (HugeCTR's Python default 0.0).
    """

    state_names = ("accum",)

    def __init__(
        self, params: Iterable[torch.Tensor] | Iterable[dict[str, Any]], lr: float = 0.001, momentum_factor: float = 0.0
    ) -> None:
        super().__init__(params, {"lr": lr, "momentum_factor": momentum_factor})

    def _update_group(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        group: dict[str, Any],
    ) -> None:
        mu = group["momentum_factor"]
        accum = [state["accum"] for state in states]
        torch._foreach_add_(params, accum, alpha=-mu)
        torch._foreach_mul_(accum, mu)
        torch._foreach_add_(accum, grads, alpha=-group["lr"])
        torch._foreach_add_(params, accum, alpha=1.0 + mu)


class AdaGrad(DenseOptimizer):
    """`acc += g²`; `w −= lr·g/(sqrt(acc) + ε)`, with `acc` starting at `initial_accu_value`.

    Args:
        params: the dense parameters.
        lr: learning rate.
        initial_accu_value: starting accumulator value, >= 0.
        epsilon: ε.
    """

    state_names = ("accum",)

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.001,
        initial_accu_value: float = 0.0,
        epsilon: float = 1e-7,
    ) -> None:
        if initial_accu_value < 0:
            raise ValueError(f"AdaGrad: initial_accu_value={initial_accu_value} is negative; pass a value >= 0.")
        super().__init__(params, {"lr": lr, "initial_accu_value": initial_accu_value, "epsilon": epsilon})

    def _initial_state(self, param: torch.Tensor, group: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"accum": torch.full_like(param, group["initial_accu_value"])}

    def _update_group(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        group: dict[str, Any],
    ) -> None:
        accum = [state["accum"] for state in states]
        torch._foreach_addcmul_(accum, grads, grads)
        denominators = torch._foreach_sqrt(accum)
        torch._foreach_add_(denominators, group["epsilon"])
        torch._foreach_addcdiv_(params, grads, denominators, value=-group["lr"])


class Adam(DenseOptimizer):
    """Adam with HugeCTR's (TF-style) ε placement.

    Args:
        params: the dense parameters.
        lr: learning rate.
        beta1, beta2: moment decay rates.
        epsilon: ε, added to sqrt(v) after bias correction of the step size.
    """

    state_names = ("m", "v")

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-7,
    ) -> None:
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Adam: {label}={beta} is outside [0, 1); pass a decay rate such as 0.9.")
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2, "epsilon": epsilon})

    def _update_group(
        self,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        states: list[dict[str, Any]],
        group: dict[str, Any],
    ) -> None:
        beta1, beta2, t = group["beta1"], group["beta2"], self.step_count
        m = [state["m"] for state in states]
        v = [state["v"] for state in states]
        torch._foreach_mul_(m, beta1)
        torch._foreach_add_(m, grads, alpha=1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, grads, grads, value=1.0 - beta2)
        step_size = group["lr"] * (1.0 - beta2**t) ** 0.5 / (1.0 - beta1**t)
        denominators = torch._foreach_sqrt(v)
        torch._foreach_add_(denominators, group["epsilon"])
        torch._foreach_addcdiv_(params, m, denominators, value=-step_size)


OPTIMIZERS: dict[str, type[DenseOptimizer]] = {
    "Adam": Adam,
    "AdaGrad": AdaGrad,
    "MomentumSGD": MomentumSGD,
    "Nesterov": Nesterov,
    "SGD": SGD,
}
