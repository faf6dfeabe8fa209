"""HugeCTR v3.5's enums, as the `hugectr` module exposes them (semantics spec §10.1, §1.1).

Each enum behaves like its pybind11 original: `int(x)`, `x.name`, `x.value`, `repr` `<Layer_t.InnerProduct: 7>`,
`str` `Layer_t.InnerProduct`, hashable (so `metrics_spec={MetricsType.AUC: 1.0}` works), and members of two
different enums never compare equal even when their integers match (`Check_t.Non != Alignment_t.Non`).
Integer values are the C++ declaration order.

pybind11's `export_values()` also puts every member on the module; `exported_values()` reproduces that,
later-registered enums overwriting earlier duplicate names (`Non`, `Uniform`, `Distributed`, `Parquet`) in the
registration order of `ENUM_REGISTRATION_ORDER`.
"""

from __future__ import annotations

import enum
from typing import Any


class HugeCTREnum(enum.IntEnum):
    """An `IntEnum` that reads and compares like a pybind11 enum."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {int(self)}>"

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __format__(self, format_spec: str) -> str:
        if not format_spec:
            return str(self)
        return int.__format__(int(self), format_spec)

    def __eq__(self, other: object) -> bool:
        # Members of different HugeCTR enums are distinct even with equal integers (pybind11 enums are not
        # interchangeable); a plain int still compares by value, as IntEnum promises.
        if isinstance(other, enum.Enum):
            return type(other) is type(self) and int(other) == int(self)
        if isinstance(other, int):
            return int(self) == other
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return int.__hash__(self)


class Error_t(HugeCTREnum):
    Success = 0
    FileCannotOpen = 1
    BrokenFile = 2
    OutOfMemory = 3
    OutOfBound = 4
    WrongInput = 5
    IllegalCall = 6
    NotInitialized = 7
    UnSupportedFormat = 8
    InvalidEnv = 9
    DataCheckError = 10
    UnspecificError = 11
    EndOfFile = 12
    MpiError = 13
    CudaError = 14
    CublasError = 15
    CudnnError = 16
    # CurandError 17 and NvmlError 19 exist in C++ but are not exposed by v3.5's bindings.
    NcclError = 18


class Check_t(HugeCTREnum):
    Sum = 0
    Non = 1


class DataReaderSparse_t(HugeCTREnum):
    Distributed = 0
    Localized = 1


class DataReaderType_t(HugeCTREnum):
    Norm = 0
    Raw = 1
    Parquet = 2
    RawAsync = 3


class SourceType_t(HugeCTREnum):
    FileList = 0
    Mmap = 1
    Parquet = 2


class TrainPSType_t(HugeCTREnum):
    Staged = 0
    Cached = 1


class Embedding_t(HugeCTREnum):
    DistributedSlotSparseEmbeddingHash = 0
    LocalizedSlotSparseEmbeddingHash = 1
    LocalizedSlotSparseEmbeddingOneHot = 2
    HybridSparseEmbedding = 3


class Initializer_t(HugeCTREnum):
    Default = 0
    Uniform = 1
    XavierNorm = 2
    XavierUniform = 3
    Zero = 4


class GroupLayer_t(HugeCTREnum):
    GroupFusedInnerProduct = 0


class Layer_t(HugeCTREnum):
    BatchNorm = 0
    BinaryCrossEntropyLoss = 1
    Reshape = 2
    Concat = 3
    CrossEntropyLoss = 4
    Dropout = 5
    ELU = 6
    InnerProduct = 7
    FusedInnerProduct = 8
    Interaction = 9
    MultiCrossEntropyLoss = 10
    ReLU = 11
    ReLUHalf = 12
    GRU = 13
    MatrixMultiply = 14
    Scale = 15
    FusedReshapeConcat = 16
    FusedReshapeConcatGeneral = 17
    Softmax = 18
    PReLU_Dice = 19
    ReduceMean = 20
    Sub = 21
    Gather = 22
    Sigmoid = 23
    Slice = 24
    WeightMultiply = 25
    FmOrder2 = 26
    Add = 27
    ReduceSum = 28
    MultiCross = 29
    Cast = 30
    ElementwiseMultiply = 31


class LrPolicy_t(HugeCTREnum):
    fixed = 0


class Optimizer_t(HugeCTREnum):
    Adam = 0
    AdaGrad = 1
    MomentumSGD = 2
    Nesterov = 3
    SGD = 4
    # The API document writes `Optimizer_t.Adagrad`; an alias of AdaGrad so both spellings work.
    Adagrad = 1


class Update_t(HugeCTREnum):
    Local = 0
    Global = 1
    LazyGlobal = 2


class Activation_t(HugeCTREnum):
    Relu = 0
    Non = 1


class FcPosition_t(HugeCTREnum):
    Non = 0
    Head = 1
    Body = 2
    Tail = 3
    Isolated = 4


class Regularizer_t(HugeCTREnum):
    L1 = 0
    L2 = 1


class Alignment_t(HugeCTREnum):
    Auto = 0
    Non = 1


class MetricsRawType(HugeCTREnum):
    Loss = 0
    Pred = 1
    Label = 2


class MetricsType(HugeCTREnum):
    AUC = 0
    AverageLoss = 1
    HitRate = 2


class DeviceLayout(HugeCTREnum):
    LocalFirst = 0
    NodeFirst = 1


class AllReduceAlgo(HugeCTREnum):
    OneShot = 0
    NCCL = 1


class HybridEmbeddingType(HugeCTREnum):
    Distributed = 0


class CommunicationType(HugeCTREnum):
    IB_NVLink_Hier = 0
    IB_NVLink = 1
    NVLink_SingleNode = 2


class Distribution_t(HugeCTREnum):
    Uniform = 0
    PowerLaw = 1


class PowerLaw_t(HugeCTREnum):
    Long = 0
    Medium = 1
    Short = 2
    Specific = 3


class DatabaseType_t(HugeCTREnum):
    disabled = 0
    hash_map = 1
    parallel_hash_map = 2
    redis_cluster = 3
    rocks_db = 4


class DatabaseHashMapAlgorithm_t(HugeCTREnum):
    stl = 0
    phm = 1


class DatabaseOverflowPolicy_t(HugeCTREnum):
    evict_oldest = 0
    evict_random = 1


class UpdateSourceType_t(HugeCTREnum):
    null = 0
    kafka_message_queue = 1


# Registration order of `module_main.cpp@v3.5` (semantics spec §10.1); decides which duplicate name wins.
ENUM_REGISTRATION_ORDER: tuple[type[HugeCTREnum], ...] = (
    Error_t,
    Check_t,
    DataReaderSparse_t,
    DataReaderType_t,
    SourceType_t,
    TrainPSType_t,
    Embedding_t,
    Initializer_t,
    GroupLayer_t,
    Layer_t,
    LrPolicy_t,
    Optimizer_t,
    Update_t,
    Activation_t,
    FcPosition_t,
    Regularizer_t,
    Alignment_t,
    MetricsRawType,
    MetricsType,
    DeviceLayout,
    AllReduceAlgo,
    HybridEmbeddingType,
    CommunicationType,
    Distribution_t,
    PowerLaw_t,
    DatabaseType_t,
    DatabaseHashMapAlgorithm_t,
    DatabaseOverflowPolicy_t,
    UpdateSourceType_t,
)

# PowerLaw_t's fixed exponents (formats spec §4.2); Specific uses the caller's alpha.
POWER_LAW_ALPHA: dict[PowerLaw_t, float] = {PowerLaw_t.Long: 0.9, PowerLaw_t.Medium: 1.1, PowerLaw_t.Short: 1.3}


def exported_values() -> dict[str, Any]:
    """Every enum member by bare name, as `export_values()` leaves them on the module (later enums win)."""
    values: dict[str, Any] = {}
    for enum_type in ENUM_REGISTRATION_ORDER:
        for member in enum_type:
            values[member.name] = member
    return values


def enum_names() -> list[str]:
    """The names of all enums, in registration order."""
    return [enum_type.__name__ for enum_type in ENUM_REGISTRATION_ORDER]
