"""The LAYERS registry holds every Layer_t of semantics spec §1.1 under its HugeCTR name."""

import inspect

from ctrflow.dense.layers import LAYERS
from ctrflow.dense.types import Layer, Loss

LAYER_T = [
    "BatchNorm",
    "BinaryCrossEntropyLoss",
    "Reshape",
    "Concat",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "InnerProduct",
    "FusedInnerProduct",
    "Interaction",
    "MultiCrossEntropyLoss",
    "ReLU",
    "ReLUHalf",
    "GRU",
    "MatrixMultiply",
    "Scale",
    "FusedReshapeConcat",
    "FusedReshapeConcatGeneral",
    "Softmax",
    "PReLU_Dice",
    "ReduceMean",
    "Sub",
    "Gather",
    "Sigmoid",
    "Slice",
    "WeightMultiply",
    "FmOrder2",
    "Add",
    "ReduceSum",
    "MultiCross",
    "Cast",
    "ElementwiseMultiply",
]
DENSE_LAYER_KWARGS = {
    "factor",
    "eps",
    "gamma_init_type",
    "beta_init_type",
    "dropout_rate",
    "elu_alpha",
    "num_output",
    "weight_init_type",
    "bias_init_type",
    "num_layers",
    "leading_dim",
    "time_step",
    "batchsize",
    "SeqLength",
    "vector_size",
    "selected",
    "selected_slots",
    "ranges",
    "indices",
    "weight_dims",
    "out_dim",
    "axis",
    "target_weight_vec",
    "use_regularizer",
    "regularizer_type",
    "pos_type",
    "act_type",
}


def test_every_layer_type_is_registered_in_enum_order():
    assert list(LAYERS) == LAYER_T


def test_every_registered_class_is_a_layer_named_by_its_key():
    for name, cls in LAYERS.items():
        assert issubclass(cls, Layer) and cls.layer_type == name


def test_losses_are_loss_layers():
    losses = {n for n, cls in LAYERS.items() if issubclass(cls, Loss)}
    assert losses == {"BinaryCrossEntropyLoss", "CrossEntropyLoss", "MultiCrossEntropyLoss"}


def test_constructor_keywords_are_dense_layer_kwargs():
    # num_tops (Interaction, FusedInnerProduct) stands for the length of top_names
    allowed = DENSE_LAYER_KWARGS | {"input_shapes", "name", "num_tops"}
    for name, cls in LAYERS.items():
        parameters = inspect.signature(cls.__init__).parameters.values()
        assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters), name
        keywords = {p.name for p in parameters} - {"self"}
        assert keywords <= allowed, (name, keywords - allowed)
