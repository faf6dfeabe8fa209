"""The `hugectr` facade: HugeCTR v3.5's Python names, enums and parameter objects (semantics spec §10).

Scripts written for HugeCTR v3.5 run unchanged through the top-level `hugectr` shim, which re-exports this
package. The facade has no behaviour of its own: parameter objects record and check a v3.5 call
(`argument_validation.py`), and `Model` (in `model.py`) translates them onto the native graph. Every enum
member is also a module attribute, as pybind11's `export_values()` leaves them (later enums win duplicate
names). Submodules: `tools` (data generator), `inference` (inference and parameter-server parameters),
`data` (data sources).
"""

from __future__ import annotations

from . import data, inference, tools
from .enums import (
    Activation_t,
    Alignment_t,
    AllReduceAlgo,
    Check_t,
    CommunicationType,
    DatabaseHashMapAlgorithm_t,
    DatabaseOverflowPolicy_t,
    DatabaseType_t,
    DataReaderSparse_t,
    DataReaderType_t,
    DeviceLayout,
    Distribution_t,
    Embedding_t,
    Error_t,
    FcPosition_t,
    GroupLayer_t,
    HybridEmbeddingType,
    Initializer_t,
    Layer_t,
    LrPolicy_t,
    MetricsRawType,
    MetricsType,
    Optimizer_t,
    PowerLaw_t,
    Regularizer_t,
    SourceType_t,
    TrainPSType_t,
    Update_t,
    UpdateSourceType_t,
    exported_values,
)
from .layers import DenseLayer, GroupDenseLayer, Input, SparseEmbedding
from .optimizer_params import CreateOptimizer, OptParamsPy
from .reader_params import AsyncParam, DataReaderParams, DataReaderSparseParam, HybridEmbeddingParam
from .solver import CreateSolver, Solver
from .training_cache import CreateETC, CreateHMemCache, EmbeddingTrainingCacheParams, HMemCacheConfig

__version__ = "3.5.0"

from .model import (
    DataReader32,
    DataReader64,
    EmbeddingTrainingCache,
    IDataReader,
    LearningRateScheduler,
    Model,
    ModelPerfExt,
)

_MODEL_NAMES = (
    "Model",
    "ModelPerfExt",
    "IDataReader",
    "DataReader32",
    "DataReader64",
    "LearningRateScheduler",
    "EmbeddingTrainingCache",
)

# pybind11's export_values(): every member as a module attribute (semantics spec §10).
globals().update(exported_values())

__all__ = [
    "AsyncParam",
    "CreateETC",
    "CreateHMemCache",
    "CreateOptimizer",
    "CreateSolver",
    "DataReaderParams",
    "DataReaderSparseParam",
    "DenseLayer",
    "EmbeddingTrainingCacheParams",
    "GroupDenseLayer",
    "HMemCacheConfig",
    "HybridEmbeddingParam",
    "Input",
    "OptParamsPy",
    "Solver",
    "SparseEmbedding",
    "__version__",
    "data",
    "inference",
    "tools",
    "Model",
    "ModelPerfExt",
    "IDataReader",
    "DataReader32",
    "DataReader64",
    "LearningRateScheduler",
    "EmbeddingTrainingCache",
    "Activation_t",
    "Alignment_t",
    "AllReduceAlgo",
    "Check_t",
    "CommunicationType",
    "DatabaseHashMapAlgorithm_t",
    "DatabaseOverflowPolicy_t",
    "DatabaseType_t",
    "DataReaderSparse_t",
    "DataReaderType_t",
    "DeviceLayout",
    "Distribution_t",
    "Embedding_t",
    "Error_t",
    "FcPosition_t",
    "GroupLayer_t",
    "HybridEmbeddingType",
    "Initializer_t",
    "Layer_t",
    "LrPolicy_t",
    "MetricsRawType",
    "MetricsType",
    "Optimizer_t",
    "PowerLaw_t",
    "Regularizer_t",
    "SourceType_t",
    "TrainPSType_t",
    "UpdateSourceType_t",
    "Update_t",
    *exported_values(),
]
