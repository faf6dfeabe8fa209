"""Parameter objects of the data side: `DataReaderParams`, `AsyncParam`, `DataReaderSparseParam`, and the
`HybridEmbeddingParam` that `SparseEmbedding` takes (semantics spec §10.2, §3.1).

They only record and check a v3.5 call; the lead's `Model` turns them into readers and embeddings.
`DataReaderSparseParam.to_sparse_input_spec()` gives the reader contract's `SparseInputSpec`.
"""

from __future__ import annotations

from typing import Any

from ctrflow.readers.types import SparseInputSpec

from .argument_validation import (
    Argument,
    FacadeObject,
    boolean,
    enum_member,
    instance_of,
    integer,
    list_of,
    number,
    str_or_str_list,
    string,
)
from .enums import Alignment_t, Check_t, CommunicationType, DataReaderType_t, HybridEmbeddingType

READER_KINDS = {DataReaderType_t.Norm: "norm", DataReaderType_t.Raw: "raw", DataReaderType_t.Parquet: "parquet"}
CHECK_TYPES = {Check_t.Sum: "sum", Check_t.Non: "none"}


class AsyncParam(FacadeObject):
    """Settings of the asynchronous Raw reader (MLPerf DLRM only); every argument is required.

    Args:
        num_threads, num_batches_per_thread, io_block_size, io_depth, io_alignment: positive ints.
        shuffle: randomise the batch order.
        aligned_type: Alignment_t.Auto pads the dense width to a multiple of 8; Alignment_t.Non does not.
    """

    __slots__ = ()
    _owner = "AsyncParam"
    _signature = (
        Argument("num_threads", integer(1)),
        Argument("num_batches_per_thread", integer(1)),
        Argument("io_block_size", integer(1)),
        Argument("io_depth", integer(1)),
        Argument("io_alignment", integer(1)),
        Argument("shuffle", boolean()),
        Argument("aligned_type", enum_member(Alignment_t)),
    )


def default_async_param() -> AsyncParam:
    """v3.5's default `AsyncParam(16, 4, 512000, 4, 512, False, Alignment_t.Non)`."""
    return AsyncParam(16, 4, 512000, 4, 512, False, Alignment_t.Non)


def _async_param(owner: str, name: str, value: Any) -> AsyncParam:
    if value is None:
        return default_async_param()
    checked: AsyncParam = instance_of(AsyncParam)(owner, name, value)
    return checked


class DataReaderParams(FacadeObject):
    """The training and evaluation data of a model (semantics spec §10.2).

    `source` and `keyset` may be a str or a list of str and are stored as lists; `eval_source` is one str.
    `float_label_dense` defaults to False as in v3.5's code (the document says True).
    """

    __slots__ = ()
    _owner = "DataReaderParams"
    _signature = (
        Argument("data_reader_type", enum_member(DataReaderType_t)),
        Argument("source", str_or_str_list()),
        Argument("keyset", str_or_str_list(), []),
        Argument("eval_source", string()),
        Argument("check_type", enum_member(Check_t)),
        Argument("cache_eval_data", integer(0), 0),
        Argument("num_samples", integer(0), 0),
        Argument("eval_num_samples", integer(0), 0),
        Argument("float_label_dense", boolean(), False),
        Argument("num_workers", integer(1), 12),
        Argument("slot_size_array", list_of(integer(0)), []),
        Argument("async_param", _async_param, None),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        if not values["source"] or not all(values["source"]) or not values["eval_source"]:
            raise ValueError(
                f"{self._owner}: The data source for training and evaluation should be specified; received "
                f"source={values['source']!r}, eval_source={values['eval_source']!r}. Give the file list (Norm, "
                "Parquet) or data file (Raw) of each."
            )


class DataReaderSparseParam(FacadeObject):
    """One sparse input of the dataset (always of type DataReaderSparse_t.Distributed in v3.5).

    Args:
        top_name: the tensor name layers refer to.
        nnz_per_slot: max keys per slot: one int for every slot, or a list with one entry per slot
            (stored as the list).
        is_fixed_length: every sample has exactly nnz_per_slot keys in each slot.
        slot_num: number of slots of this input.
    """

    __slots__ = ()
    _owner = "DataReaderSparseParam"
    _signature = (
        Argument("top_name", string()),
        Argument("nnz_per_slot", lambda owner, name, value: _nnz_per_slot(owner, name, value)),
        Argument("is_fixed_length", boolean()),
        Argument("slot_num", integer(1)),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        nnz = values["nnz_per_slot"]
        if isinstance(nnz, int):
            values["nnz_per_slot"] = [nnz] * values["slot_num"]
        elif len(nnz) != values["slot_num"]:
            raise ValueError(
                f'{self._owner} "{values["top_name"]}": slot num != nnz_per_slot.size(): slot_num is '
                f"{values['slot_num']} but nnz_per_slot has {len(nnz)} entries; give one entry per slot or one int"
            )

    def to_sparse_input_spec(self) -> SparseInputSpec:
        """The reader contract's description of this input."""
        return SparseInputSpec(
            name=self._values["top_name"],
            num_slots=self._values["slot_num"],
            nnz_per_slot=tuple(self._values["nnz_per_slot"]),
            is_fixed_length=self._values["is_fixed_length"],
        )


def _nnz_per_slot(owner: str, name: str, value: Any) -> int | list[int]:
    if isinstance(value, (list, tuple)):
        checked: list[int] = list_of(integer(0))(owner, name, value)
        return checked
    return int(integer(0)(owner, name, value))


class HybridEmbeddingParam(FacadeObject):
    """Settings of the hybrid embedding (MLPerf DLRM only); defaults are those SparseEmbedding uses (§3.1).

    The API document's example passes 8 positional values, without the two precompute flags; that form is
    accepted too (detected by a CommunicationType in 7th place).
    """

    __slots__ = ()
    _owner = "HybridEmbeddingParam"
    _signature = (
        Argument("max_num_frequent_categories", integer(), 1),
        Argument("max_num_infrequent_samples", integer(), -1),
        Argument("p_dup_max", number(0.0, 1.0), 0.01),
        Argument("max_all_reduce_bandwidth", number(0.0, exclusive_minimum=True), 1.3e11),
        Argument("max_all_to_all_bandwidth", number(0.0, exclusive_minimum=True), 1.9e11),
        Argument("efficiency_bandwidth_ratio", number(0.0, exclusive_minimum=True), 1.0),
        Argument("use_train_precompute_indices", boolean(), False),
        Argument("use_eval_precompute_indices", boolean(), False),
        Argument("communication_type", enum_member(CommunicationType), CommunicationType.NVLink_SingleNode),
        Argument("hybrid_embedding_type", enum_member(HybridEmbeddingType), HybridEmbeddingType.Distributed),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) >= 7 and isinstance(args[6], CommunicationType):
            # The document's 8-argument form: (..., efficiency_bandwidth_ratio, communication_type, type).
            if len(args) > 8:
                raise TypeError(f"{self._owner}() takes 8 or 10 positional arguments but {len(args)} were given")
            moved = dict(zip(("communication_type", "hybrid_embedding_type"), args[6:], strict=False))
            for name in moved.keys() & kwargs.keys():
                raise TypeError(f"{self._owner}() got multiple values for argument '{name}'")
            args, kwargs = args[:6], {**moved, **kwargs}
        super().__init__(*args, **kwargs)
