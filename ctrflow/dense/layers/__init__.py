"""Built-in dense layers, one family per module, and the `LAYERS` registry (HugeCTR `Layer_t` name → class).

Every class is a `ctrflow.dense.types.Layer`: built from its bottoms' shapes and the `DenseLayer`
kwargs it uses (initialisers and enums as plain strings), it sets `output_shapes` and `forward` takes
the bottoms in order. A layer with one top returns a tensor; a layer with several tops (Slice with
several ranges, FusedReshapeConcat, FusedInnerProduct Head/Body, two-top Interaction) returns a tuple
in top order. The loss layers live in `ctrflow.dense.losses` and are registered here too.
"""

from __future__ import annotations

from ctrflow.dense.layers.activations import ELU, Dropout, ReLU, ReLUHalf, Sigmoid
from ctrflow.dense.layers.attention import PReLU_Dice, Scale, Softmax
from ctrflow.dense.layers.casting import Cast
from ctrflow.dense.layers.core import FusedInnerProduct, InnerProduct
from ctrflow.dense.layers.cross import MultiCross
from ctrflow.dense.layers.factorization import FmOrder2, WeightMultiply
from ctrflow.dense.layers.interaction import Interaction
from ctrflow.dense.layers.merging import Add, ElementwiseMultiply, MatrixMultiply, Sub
from ctrflow.dense.layers.normalization import BatchNorm
from ctrflow.dense.layers.recurrent import GRU
from ctrflow.dense.layers.reductions import ReduceMean, ReduceSum
from ctrflow.dense.layers.reshaping import Concat, FusedReshapeConcat, FusedReshapeConcatGeneral, Gather, Reshape, Slice
from ctrflow.dense.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MultiCrossEntropyLoss
from ctrflow.dense.types import Layer

# semantics spec §1.1, in pybind enum order
LAYERS: dict[str, type[Layer]] = {
    cls.layer_type: cls
    for cls in (
        BatchNorm,
        BinaryCrossEntropyLoss,
        Reshape,
        Concat,
        CrossEntropyLoss,
        Dropout,
        ELU,
        InnerProduct,
        FusedInnerProduct,
        Interaction,
        MultiCrossEntropyLoss,
        ReLU,
        ReLUHalf,
        GRU,
        MatrixMultiply,
        Scale,
        FusedReshapeConcat,
        FusedReshapeConcatGeneral,
        Softmax,
        PReLU_Dice,
        ReduceMean,
        Sub,
        Gather,
        Sigmoid,
        Slice,
        WeightMultiply,
        FmOrder2,
        Add,
        ReduceSum,
        MultiCross,
        Cast,
        ElementwiseMultiply,
    )
}

__all__ = [
    "ELU",
    "GRU",
    "LAYERS",
    "Add",
    "BatchNorm",
    "BinaryCrossEntropyLoss",
    "Cast",
    "Concat",
    "CrossEntropyLoss",
    "Dropout",
    "ElementwiseMultiply",
    "FmOrder2",
    "FusedInnerProduct",
    "FusedReshapeConcat",
    "FusedReshapeConcatGeneral",
    "Gather",
    "InnerProduct",
    "Interaction",
    "MatrixMultiply",
    "MultiCross",
    "MultiCrossEntropyLoss",
    "PReLU_Dice",
    "ReLU",
    "ReLUHalf",
    "ReduceMean",
    "ReduceSum",
    "Reshape",
    "Scale",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Sub",
    "WeightMultiply",
]
