"""`hugectr.CreateOptimizer(...) -> OptParamsPy`: the optimizer of the dense network and default of embeddings.

Keywords and defaults are v3.5's (semantics spec §4.1): `optimizer_type=Adam`, `update_type=Global` (the code
default; the document's prose says Local), `beta1=0.9`, `beta2=0.999`, `epsilon=1e-7`, `initial_accu_value=0.0`,
`momentum_factor=0.0`, `atomic_update=True`. `OptParamsPy.to_sparse_optimizer_config()` translates onto the
embedding engine's `SparseOptimizerConfig`.
"""

from __future__ import annotations

from typing import Any

from ctrflow.embedding.types import SparseOptimizerConfig

from .argument_validation import Argument, FacadeObject, boolean, enum_member, number
from .enums import Optimizer_t, Update_t

OPTIMIZER_KINDS = {
    Optimizer_t.Adam: "adam",
    Optimizer_t.AdaGrad: "adagrad",
    Optimizer_t.MomentumSGD: "momentum_sgd",
    Optimizer_t.Nesterov: "nesterov",
    Optimizer_t.SGD: "sgd",
}
UPDATE_TYPES = {Update_t.Global: "global", Update_t.Local: "local", Update_t.LazyGlobal: "lazy_global"}


class OptParamsPy(FacadeObject):
    """An optimizer and its hyper-parameters; build it with `CreateOptimizer(...)`.

    The learning rate is not here: it comes from the Solver and the learning-rate schedule.
    """

    __slots__ = ()
    _owner = "CreateOptimizer"
    _signature = (
        Argument("optimizer_type", enum_member(Optimizer_t), Optimizer_t.Adam),
        Argument("update_type", enum_member(Update_t), Update_t.Global),
        Argument("beta1", number(0.0, 1.0), 0.9),
        Argument("beta2", number(0.0, 1.0), 0.999),
        Argument("epsilon", number(0.0), 1e-7),
        Argument("initial_accu_value", number(0.0), 0.0),
        Argument("momentum_factor", number(0.0), 0.0),
        Argument("atomic_update", boolean(), True),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        if values["update_type"] == Update_t.LazyGlobal and values["optimizer_type"] != Optimizer_t.Adam:
            raise ValueError(
                f"{self._owner}: lazy global update is only implemented for Adam, received "
                f"optimizer_type={values['optimizer_type']}; use Update_t.Global or Update_t.Local"
            )
        for name in ("beta1", "beta2"):
            if values[name] >= 1.0:
                raise ValueError(f"{self._owner}: {name} must be < 1, received {values[name]}")

    def to_sparse_optimizer_config(self) -> SparseOptimizerConfig:
        """The same optimizer as the embedding engine's config (kind and update names in lower case)."""
        values = self._values
        return SparseOptimizerConfig(
            kind=OPTIMIZER_KINDS[values["optimizer_type"]],  # type: ignore[arg-type]
            update_type=UPDATE_TYPES[values["update_type"]],  # type: ignore[arg-type]
            beta1=values["beta1"],
            beta2=values["beta2"],
            epsilon=values["epsilon"],
            initial_accu_value=values["initial_accu_value"],
            momentum_factor=values["momentum_factor"],
            atomic_update=values["atomic_update"],
        )


def CreateOptimizer(*args: Any, **kwargs: Any) -> OptParamsPy:
    """Create an `OptParamsPy` from v3.5's keywords (semantics spec §4.1)."""
    return OptParamsPy(*args, **kwargs)
