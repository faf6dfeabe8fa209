"""The layer descriptions a v3.5 script hands to `Model.add`: `Input`, `SparseEmbedding`, `DenseLayer`,
`GroupDenseLayer` (semantics spec §10.2, §3.1, §1.2, §1.4).

They record and check one call; the lead's `Model` translates them onto the native graph. Only checks that
need no other layer are made here (tensor wiring is checked when the model is built).
"""

from __future__ import annotations

from typing import Any

from ctrflow.embedding.types import EmbeddingConfig

from .argument_validation import (
    Argument,
    FacadeObject,
    bind_arguments,
    boolean,
    enum_member,
    instance_of,
    int_pair,
    integer,
    list_of,
    number,
    string,
)
from .enums import Activation_t, Embedding_t, FcPosition_t, GroupLayer_t, Initializer_t, Layer_t, Regularizer_t
from .optimizer_params import OptParamsPy
from .reader_params import DataReaderSparseParam, HybridEmbeddingParam

EMBEDDING_KINDS = {
    Embedding_t.DistributedSlotSparseEmbeddingHash: "distributed",
    Embedding_t.LocalizedSlotSparseEmbeddingHash: "localized",
    Embedding_t.LocalizedSlotSparseEmbeddingOneHot: "one_hot",
    Embedding_t.HybridSparseEmbedding: "hybrid",
}

_SPARSE_ARRAY = Argument("data_reader_sparse_param_array", list_of(instance_of(DataReaderSparseParam)))
_DENSE = (Argument("dense_dim", integer(0)), Argument("dense_name", string()))
_SINGLE_LABEL = (Argument("label_dim", integer(1)), Argument("label_name", string()), *_DENSE, _SPARSE_ARRAY)
_LABEL_LISTS = (Argument("label_dims", list_of(integer(), 1)), Argument("label_names", list_of(string(), 1)))
_MULTI_LABEL = (*_LABEL_LISTS, *_DENSE, _SPARSE_ARRAY)
_WEIGHTED_LABEL = (*_LABEL_LISTS, Argument("label_weights", list_of(number())), *_DENSE, _SPARSE_ARRAY)


class Input(FacadeObject):
    """The data input of a model, in one of v3.5's three forms (semantics spec §10.2):

    `Input(label_dim, label_name, dense_dim, dense_name, data_reader_sparse_param_array)`,
    `Input(label_dims, label_names, dense_dim, dense_name, data_reader_sparse_param_array)` and
    `Input(label_dims, label_names, label_weights, dense_dim, dense_name, data_reader_sparse_param_array)`.
    The document also allows lists for `label_dim` / `label_name`; they mean the multi-label form.

    Every form stores `label_dims`, `label_names` and `label_weights` (1.0 each by default) as lists; the
    single-label form also stores `label_dim` and `label_name`.
    """

    __slots__ = ()
    _owner = "Input"
    _signature = (*_SINGLE_LABEL[:2], *_WEIGHTED_LABEL)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = bind_arguments(self._owner, self._form(args, kwargs), args, kwargs)
        if "label_dim" in values:
            values = {
                "label_dim": values["label_dim"],
                "label_name": values["label_name"],
                "label_dims": [values["label_dim"]],
                "label_names": [values["label_name"]],
                **values,
            }
        values = {"label_weights": [1.0] * len(values["label_names"]), **values}
        ordered = {a.name: values[a.name] for a in self._signature if a.name in values}
        self._check_values(ordered)
        object.__setattr__(self, "_values", ordered)

    @staticmethod
    def _form(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Argument, ...]:
        first = args[0] if args else kwargs.get("label_dim", kwargs.get("label_dims"))
        if "label_dim" in kwargs and isinstance(first, (list, tuple)):
            # The document's list-valued label_dim / label_name mean the multi-label form.
            kwargs["label_dims"] = kwargs.pop("label_dim")
            if "label_name" in kwargs:
                kwargs["label_names"] = kwargs.pop("label_name")
        if "label_weights" in kwargs or len(args) >= 6:
            return _WEIGHTED_LABEL
        if isinstance(first, (list, tuple)) or "label_dims" in kwargs or "label_names" in kwargs:
            return _MULTI_LABEL
        return _SINGLE_LABEL

    def _check_values(self, values: dict[str, Any]) -> None:
        dims, names, weights = values["label_dims"], values["label_names"], values["label_weights"]
        if any(dim < 1 for dim in dims):
            raise ValueError(f"{self._owner}: each label dimension must be at least 1, received label_dims={dims}")
        if len(names) != len(dims) or len(weights) != len(dims):
            raise ValueError(
                f"{self._owner}: label_dims, label_names and label_weights need one entry per label, received "
                f"{len(dims)} dims, {len(names)} names and {len(weights)} weights"
            )
        sparse_names = [param.top_name for param in values["data_reader_sparse_param_array"]]
        for kind, listed in (("label", names), ("sparse input", sparse_names)):
            duplicates = sorted({n for n in listed if listed.count(n) > 1})
            if duplicates:
                raise ValueError(f"{self._owner}: {kind} names must be unique, received {duplicates} more than once")

    @property
    def is_multi_label(self) -> bool:
        return "label_dim" not in self._values


def _optimizer(owner: str, name: str, value: Any) -> OptParamsPy | None:
    checked: OptParamsPy | None = instance_of(OptParamsPy, allow_none=True)(owner, name, value)
    return checked


def _hybrid_param(owner: str, name: str, value: Any) -> HybridEmbeddingParam:
    if value is None:
        return HybridEmbeddingParam()
    checked: HybridEmbeddingParam = instance_of(HybridEmbeddingParam)(owner, name, value)
    return checked


class SparseEmbedding(FacadeObject):
    """One sparse embedding table (semantics spec §3.1).

    `optimizer=None` means the model's optimizer. `combiner` is "sum" or "mean".
    """

    __slots__ = ()
    _owner = "SparseEmbedding"
    _signature = (
        Argument("embedding_type", enum_member(Embedding_t)),
        Argument("workspace_size_per_gpu_in_mb", integer(0)),
        Argument("embedding_vec_size", integer(1)),
        Argument("combiner", string()),
        Argument("sparse_embedding_name", string()),
        Argument("bottom_name", string()),
        Argument("slot_size_array", list_of(integer(0)), []),
        Argument("optimizer", _optimizer, None),
        Argument("hybrid_embedding_param", _hybrid_param, None),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        if values["combiner"] not in ("sum", "mean"):
            raise ValueError(
                f'{self._owner} "{values["sparse_embedding_name"]}": No such combiner type: {values["combiner"]}; '
                'use "sum" or "mean"'
            )

    @property
    def embedding_kind(self) -> str:
        """The embedding engine's kind: distributed, localized, one_hot or hybrid."""
        return EMBEDDING_KINDS[self._values["embedding_type"]]

    def to_embedding_config(self, num_slots: int, model_optimizer: OptParamsPy) -> EmbeddingConfig:
        """The embedding engine's config, given the slot count of the bottom input and the model's optimizer."""
        values = self._values
        optimizer = values["optimizer"] or model_optimizer
        return EmbeddingConfig(
            name=values["sparse_embedding_name"],
            bottom=values["bottom_name"],
            kind=self.embedding_kind,  # type: ignore[arg-type]
            num_slots=num_slots,
            embedding_vec_size=values["embedding_vec_size"],
            combiner=values["combiner"],
            workspace_size_per_gpu_in_mb=values["workspace_size_per_gpu_in_mb"],
            slot_size_array=tuple(values["slot_size_array"]),
            optimizer=optimizer.to_sparse_optimizer_config(),
        )


_INIT = enum_member(Initializer_t)


class DenseLayer(FacadeObject):
    """One dense layer or loss, with every keyword and default of semantics spec §1.2.

    `lambda` is a Python keyword: pass it as `**{"lambda": x}` (or `lambda_=x`); read it back with
    `getattr(layer, "lambda")` or `layer.lambda_`.
    """

    __slots__ = ()
    _owner = "DenseLayer"
    _aliases = {"lambda_": "lambda"}
    _signature = (
        Argument("layer_type", enum_member(Layer_t)),
        Argument("bottom_names", list_of(string(), 1)),
        Argument("top_names", list_of(string(), 1)),
        Argument("factor", number(), 1.0),
        Argument("eps", number(0.0), 1e-5),
        Argument("gamma_init_type", _INIT, Initializer_t.Default),
        Argument("beta_init_type", _INIT, Initializer_t.Default),
        Argument("dropout_rate", number(0.0, 1.0), 0.5),
        Argument("elu_alpha", number(), 1.0),
        Argument("num_output", integer(1), 1),
        Argument("weight_init_type", _INIT, Initializer_t.Default),
        Argument("bias_init_type", _INIT, Initializer_t.Default),
        Argument("num_layers", integer(0), 0),
        Argument("leading_dim", integer(1), 1),
        Argument("time_step", integer(0), 0),
        Argument("batchsize", integer(1), 1),
        Argument("SeqLength", integer(1), 1),
        Argument("vector_size", integer(1), 1),
        Argument("selected", boolean(), False),
        Argument("selected_slots", list_of(integer(0)), []),
        Argument("ranges", list_of(int_pair()), []),
        Argument("indices", list_of(integer(0)), []),
        Argument("weight_dims", list_of(integer(1)), []),
        Argument("out_dim", integer(0), 0),
        Argument("axis", integer(0), 1),
        Argument("target_weight_vec", list_of(number()), []),
        Argument("use_regularizer", boolean(), False),
        Argument("regularizer_type", enum_member(Regularizer_t), Regularizer_t.L1),
        Argument("lambda", number(0.0), 0.0),
        Argument("pos_type", enum_member(FcPosition_t), FcPosition_t.Non),
        Argument("act_type", enum_member(Activation_t), Activation_t.Relu),
    )

    def __getattr__(self, name: str) -> Any:
        if name == "lambda_":
            return super().__getattr__("lambda")
        return super().__getattr__(name)

    def _check_values(self, values: dict[str, Any]) -> None:
        if values["layer_type"] == Layer_t.Dropout and values["dropout_rate"] >= 1.0:
            raise ValueError(
                f'{self._owner} "{values["top_names"][0]}": dropout_rate is the probability of zeroing and must be '
                f"< 1, received {values['dropout_rate']}"
            )


class GroupDenseLayer(FacadeObject):
    """A group of FusedInnerProduct layers (Head, Body..., Tail), mixed precision only (semantics spec §1.4).

    Needs at least two layers and one top name per entry of `num_outputs`.
    """

    __slots__ = ()
    _owner = "GroupDenseLayer"
    # The API document's example passes `bottom_name=[...]`; accepted as an alias of bottom_name_list.
    _aliases = {"bottom_name": "bottom_name_list"}
    _signature = (
        Argument("group_layer_type", enum_member(GroupLayer_t)),
        Argument("bottom_name_list", list_of(string(), 1)),
        Argument("top_name_list", list_of(string())),
        Argument("num_outputs", list_of(integer(1))),
        Argument("last_act_type", enum_member(Activation_t), Activation_t.Relu),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        tops, outputs = values["top_name_list"], values["num_outputs"]
        if len(outputs) < 2:
            raise ValueError(
                f"{self._owner}: There should be at least two layers for GroupDenseLayer, received "
                f"num_outputs={outputs}; use DenseLayer(layer_type=Layer_t.FusedInnerProduct) for one layer"
            )
        if len(tops) != len(outputs):
            raise ValueError(
                f"{self._owner}: top_name_list and num_outputs need one entry per layer, received "
                f"{len(tops)} top names and {len(outputs)} num_outputs"
            )
        if len(values["bottom_name_list"]) > 2:
            raise ValueError(
                f"{self._owner}: the head layer takes one or two bottoms, received "
                f"bottom_name_list={values['bottom_name_list']}"
            )
