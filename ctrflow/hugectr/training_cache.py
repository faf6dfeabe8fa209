"""Parameters of the Embedding Training Cache (ETC): `CreateETC`, `CreateHMemCache`,
`EmbeddingTrainingCacheParams`, `HMemCacheConfig` (semantics spec §9.1, §10.2).

The objects are built and checked with every rule of §9.1 that needs no file; the folder checks of
`sparse_models` and the rank count of `local_paths` happen when the model creates the cache.
"""

from __future__ import annotations

from typing import Any

from .argument_validation import Argument, FacadeObject, enum_member, instance_of, integer, list_of, number, string
from .enums import TrainPSType_t


class HMemCacheConfig(FacadeObject):
    """Settings of one Cached parameter server's host-memory cache; build it with `CreateHMemCache(...)`.

    Args:
        num_blocks: pass-sized blocks held in host memory (>= 1).
        target_hit_rate: a pass is inserted only while the hit rate is below this (0..1).
        max_num_evict: the most block evictions before the cache freezes (>= 0).
    """

    __slots__ = ()
    _owner = "CreateHMemCache"
    _signature = (
        Argument("num_blocks", integer(1)),
        Argument("target_hit_rate", number(0.0, 1.0)),
        Argument("max_num_evict", integer(0)),
    )


def CreateHMemCache(*args: Any, **kwargs: Any) -> HMemCacheConfig:
    """Create an `HMemCacheConfig(num_blocks, target_hit_rate, max_num_evict)`."""
    return HMemCacheConfig(*args, **kwargs)


class EmbeddingTrainingCacheParams(FacadeObject):
    """Parameters of the Embedding Training Cache; build it with `CreateETC(...)`.

    Args:
        ps_types: one TrainPSType_t per embedding table (Staged or Cached).
        sparse_models: one sparse-model folder per table (existing: incremental training; new: written).
        local_paths: one local SSD folder per rank, needed when a table is Cached.
        hmem_cache_configs: one HMemCacheConfig for all Cached tables, one per Cached table, or one per
            table (the document calls this keyword `hcache_configs`; both spellings are accepted).
    """

    __slots__ = ()
    _owner = "CreateETC"
    _aliases = {"hcache_configs": "hmem_cache_configs"}
    _signature = (
        Argument("ps_types", list_of(enum_member(TrainPSType_t), 1)),
        Argument("sparse_models", list_of(string()), []),
        Argument("local_paths", list_of(string()), []),
        Argument("hmem_cache_configs", list_of(instance_of(HMemCacheConfig)), []),
    )

    def _check_values(self, values: dict[str, Any]) -> None:
        owner, ps_types, models = self._owner, values["ps_types"], values["sparse_models"]
        if not models or not all(models):
            raise ValueError(
                f"{owner}: Must provide the path of sparse models, received sparse_models={models!r}; give one "
                "folder per embedding table"
            )
        if len(models) != len(ps_types):
            raise ValueError(
                f"{owner}: Must specify the PS type for each embedding table: {len(ps_types)} ps_types for "
                f"{len(models)} sparse_models"
            )
        num_cached = sum(1 for ps_type in ps_types if ps_type == TrainPSType_t.Cached)
        if not num_cached:
            return
        num_configs = len(values["hmem_cache_configs"])
        if num_configs not in (1, num_cached, len(ps_types)):
            raise ValueError(
                f"{owner}: Wrong hcache_configs: {num_configs} hmem_cache_configs for {num_cached} Cached of "
                f"{len(ps_types)} tables; give 1 (shared), {num_cached} (one per Cached table) or {len(ps_types)}"
            )
        if not values["local_paths"] or not all(values["local_paths"]):
            raise ValueError(
                f"{owner}: a Cached parameter server needs local_paths (one local SSD folder per rank), "
                f"received {values['local_paths']!r}"
            )

    def hmem_cache_config_of(self, table: int) -> HMemCacheConfig | None:
        """The cache config of table `table` (None for a Staged table), by v3.5's broadcast rule."""
        ps_types, configs = self._values["ps_types"], self._values["hmem_cache_configs"]
        if ps_types[table] != TrainPSType_t.Cached:
            return None
        if len(configs) == 1:
            return configs[0]  # type: ignore[no-any-return]
        if len(configs) == len(ps_types):
            return configs[table]  # type: ignore[no-any-return]
        cached_index = sum(1 for ps_type in ps_types[:table] if ps_type == TrainPSType_t.Cached)
        return configs[cached_index]  # type: ignore[no-any-return]


def CreateETC(*args: Any, **kwargs: Any) -> EmbeddingTrainingCacheParams:
    """Create `EmbeddingTrainingCacheParams(ps_types, sparse_models=[], local_paths=[], hmem_cache_configs=[])`."""
    return EmbeddingTrainingCacheParams(*args, **kwargs)
