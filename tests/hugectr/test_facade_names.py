"""Every name and enum value of semantics spec §10 is importable from `hugectr`, with v3.5's integers."""

from __future__ import annotations

import importlib
import pickle

import pytest

import hugectr

# semantics spec §10.1 (Layer_t: §1.1), members in value order.
ENUMS: dict[str, dict[str, int]] = {
    "Error_t": {
        **{
            name: value
            for value, name in enumerate(
                [
                    "Success",
                    "FileCannotOpen",
                    "BrokenFile",
                    "OutOfMemory",
                    "OutOfBound",
                    "WrongInput",
                    "IllegalCall",
                    "NotInitialized",
                    "UnSupportedFormat",
                    "InvalidEnv",
                    "DataCheckError",
                    "UnspecificError",
                    "EndOfFile",
                    "MpiError",
                    "CudaError",
                    "CublasError",
                    "CudnnError",
                ]
            )
        },
        "NcclError": 18,
    },
    "Check_t": {"Sum": 0, "Non": 1},
    "DataReaderSparse_t": {"Distributed": 0, "Localized": 1},
    "DataReaderType_t": {"Norm": 0, "Raw": 1, "Parquet": 2, "RawAsync": 3},
    "SourceType_t": {"FileList": 0, "Mmap": 1, "Parquet": 2},
    "TrainPSType_t": {"Staged": 0, "Cached": 1},
    "Embedding_t": {
        "DistributedSlotSparseEmbeddingHash": 0,
        "LocalizedSlotSparseEmbeddingHash": 1,
        "LocalizedSlotSparseEmbeddingOneHot": 2,
        "HybridSparseEmbedding": 3,
    },
    "Initializer_t": {"Default": 0, "Uniform": 1, "XavierNorm": 2, "XavierUniform": 3, "Zero": 4},
    "GroupLayer_t": {"GroupFusedInnerProduct": 0},
    "Layer_t": {
        name: value
        for value, name in enumerate(
            [
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
        )
    },
    "LrPolicy_t": {"fixed": 0},
    "Optimizer_t": {"Adam": 0, "AdaGrad": 1, "MomentumSGD": 2, "Nesterov": 3, "SGD": 4},
    "Update_t": {"Local": 0, "Global": 1, "LazyGlobal": 2},
    "Activation_t": {"Relu": 0, "Non": 1},
    "FcPosition_t": {"Non": 0, "Head": 1, "Body": 2, "Tail": 3, "Isolated": 4},
    "Regularizer_t": {"L1": 0, "L2": 1},
    "Alignment_t": {"Auto": 0, "Non": 1},
    "MetricsRawType": {"Loss": 0, "Pred": 1, "Label": 2},
    "MetricsType": {"AUC": 0, "AverageLoss": 1, "HitRate": 2},
    "DeviceLayout": {"LocalFirst": 0, "NodeFirst": 1},
    "AllReduceAlgo": {"OneShot": 0, "NCCL": 1},
    "HybridEmbeddingType": {"Distributed": 0},
    "CommunicationType": {"IB_NVLink_Hier": 0, "IB_NVLink": 1, "NVLink_SingleNode": 2},
    "Distribution_t": {"Uniform": 0, "PowerLaw": 1},
    "PowerLaw_t": {"Long": 0, "Medium": 1, "Short": 2, "Specific": 3},
    "DatabaseType_t": {"disabled": 0, "hash_map": 1, "parallel_hash_map": 2, "redis_cluster": 3, "rocks_db": 4},
    "DatabaseHashMapAlgorithm_t": {"stl": 0, "phm": 1},
    "DatabaseOverflowPolicy_t": {"evict_oldest": 0, "evict_random": 1},
    "UpdateSourceType_t": {"null": 0, "kafka_message_queue": 1},
}

TOP_LEVEL_NAMES = [
    "CreateSolver",
    "Solver",
    "CreateOptimizer",
    "OptParamsPy",
    "DataReaderParams",
    "DataReaderSparseParam",
    "AsyncParam",
    "HybridEmbeddingParam",
    "Input",
    "SparseEmbedding",
    "DenseLayer",
    "GroupDenseLayer",
    "Model",
    "ModelPerfExt",
    "IDataReader",
    "DataReader32",
    "DataReader64",
    "LearningRateScheduler",
    "EmbeddingTrainingCache",
    "CreateETC",
    "CreateHMemCache",
    "EmbeddingTrainingCacheParams",
    "HMemCacheConfig",
]
SUBMODULE_NAMES = {
    "tools": ["DataGeneratorParams", "DataGenerator"],
    "data": ["DataSourceParams", "DataSource"],
    "inference": [
        "VolatileDatabaseParams",
        "PersistentDatabaseParams",
        "UpdateSourceParams",
        "InferenceParams",
        "ParameterServerConfig",
        "InferenceModel",
        "CreateInferenceSession",
        "InferenceSession",
        "HPS",
    ],
}


@pytest.mark.parametrize("enum_name", list(ENUMS))
def test_every_enum_has_the_documented_members_and_integer_values(enum_name: str) -> None:
    enum_type = getattr(hugectr, enum_name)
    assert {member.name: int(member) for member in enum_type} == ENUMS[enum_name]
    assert [member.name for member in enum_type] == list(ENUMS[enum_name])


def test_error_t_does_not_expose_curand_and_nvml_errors() -> None:
    assert not hasattr(hugectr.Error_t, "CurandError")
    assert 17 not in {int(m) for m in hugectr.Error_t} and 19 not in {int(m) for m in hugectr.Error_t}


def test_enum_members_read_like_pybind11_enums() -> None:
    member = hugectr.Layer_t.InnerProduct
    assert (int(member), member.name, member.value) == (7, "InnerProduct", 7)
    assert repr(member) == "<Layer_t.InnerProduct: 7>"
    assert str(member) == "Layer_t.InnerProduct"
    assert f"{member}" == "Layer_t.InnerProduct"


def test_enum_members_are_hashable_dict_keys() -> None:
    spec = {hugectr.MetricsType.AUC: 1.0, hugectr.MetricsType.HitRate: 0.8}
    assert spec[hugectr.MetricsType.AUC] == 1.0
    assert hugectr.MetricsType.AverageLoss not in spec


def test_members_of_different_enums_are_not_equal_even_with_equal_integers() -> None:
    assert hugectr.Check_t.Non != hugectr.Alignment_t.Non
    assert hugectr.Check_t.Sum != hugectr.Alignment_t.Auto
    assert len({hugectr.Check_t.Non, hugectr.Alignment_t.Non, hugectr.Activation_t.Non}) == 3
    assert hugectr.Check_t.Non == hugectr.Check_t.Non


def test_optimizer_adagrad_accepts_both_spellings() -> None:
    assert hugectr.Optimizer_t.Adagrad is hugectr.Optimizer_t.AdaGrad
    assert hugectr.CreateOptimizer(optimizer_type=hugectr.Optimizer_t.Adagrad).optimizer_type.name == "AdaGrad"


def test_enum_values_are_exported_with_later_enums_overwriting_duplicates() -> None:
    assert hugectr.Non is hugectr.Alignment_t.Non
    assert hugectr.Uniform is hugectr.Distribution_t.Uniform
    assert hugectr.Distributed is hugectr.HybridEmbeddingType.Distributed
    assert hugectr.Parquet is hugectr.SourceType_t.Parquet
    expected: dict[str, str] = {}
    for enum_name, members in ENUMS.items():
        for member_name in members:
            expected[member_name] = enum_name
    for member_name, enum_name in expected.items():
        assert type(getattr(hugectr, member_name)).__name__ == enum_name, member_name


def test_unique_exported_values_are_module_attributes() -> None:
    assert hugectr.InnerProduct is hugectr.Layer_t.InnerProduct
    assert hugectr.AUC is hugectr.MetricsType.AUC
    assert hugectr.kafka_message_queue is hugectr.UpdateSourceType_t.kafka_message_queue


def test_version_is_3_5_0() -> None:
    assert hugectr.__version__ == "3.5.0"
    assert importlib.import_module("ctrflow.hugectr").__version__ == "3.5.0"


@pytest.mark.parametrize("name", TOP_LEVEL_NAMES)
def test_every_top_level_name_is_exported(name: str) -> None:
    assert callable(getattr(hugectr, name))
    assert name in hugectr.__all__


@pytest.mark.parametrize("module", list(SUBMODULE_NAMES))
def test_submodules_export_their_names_both_as_attributes_and_imports(module: str) -> None:
    shim = importlib.import_module(f"hugectr.{module}")
    assert getattr(hugectr, module) is shim
    for name in SUBMODULE_NAMES[module]:
        assert getattr(shim, name) is getattr(importlib.import_module(f"ctrflow.hugectr.{module}"), name)


def test_documented_import_forms_work() -> None:
    from hugectr.inference import InferenceModel, InferenceParams
    from hugectr.tools import DataGeneratorParams

    assert DataGeneratorParams.__name__ == "DataGeneratorParams"
    assert InferenceParams.__name__ == "InferenceParams"
    assert callable(InferenceModel)
    assert hugectr.data.DataSourceParams().port == 9000


def test_enum_members_survive_pickling() -> None:
    assert pickle.loads(pickle.dumps(hugectr.Layer_t.Slice)) is hugectr.Layer_t.Slice


def test_parameter_objects_survive_pickling() -> None:
    solver = hugectr.CreateSolver(batchsize=64, vvgpu=[[0, 1]])
    copy = pickle.loads(pickle.dumps(solver))
    assert repr(copy) == repr(solver)
    assert copy.vvgpu == [[0, 1]]
