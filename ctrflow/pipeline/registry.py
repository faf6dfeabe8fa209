"""The plugin registry: dense layers and stages by canonical name.

Built-in layers come from `ctrflow.dense.layers.LAYERS`; third-party packages add theirs through the
entry-point groups `ctrflow.layers` and `ctrflow.stages` (each entry point names a class); code in the
same process can use the `register_layer` / `register_stage` decorators. A name registered twice is an
error unless `override=True`, so a plugin cannot silently replace a built-in.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TypeVar

T = TypeVar("T", bound=type)

_GROUPS = {"layer": "ctrflow.layers", "stage": "ctrflow.stages"}


class Registry:
    """Names → classes for one plugin kind, filled lazily on first lookup."""

    def __init__(self, kind: str, builtins: Callable[[], dict[str, type]]) -> None:
        self.kind = kind
        self._builtins = builtins
        self._classes: dict[str, type] = {}
        self._loaded = False

    def register(self, name: str, cls: type, *, override: bool = False) -> None:
        self._load()
        if name in self._classes and not override and self._classes[name] is not cls:
            raise ValueError(
                f"A {self.kind} named {name!r} is already registered ({self._classes[name].__qualname__}); "
                f"pick another name or pass override=True."
            )
        self._classes[name] = cls

    def get(self, name: str) -> type:
        self._load()
        try:
            return self._classes[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._classes, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"Unknown {self.kind} type {name!r}.{hint} Known: {', '.join(sorted(self._classes))}. "
                f"Third-party {self.kind}s register through the entry-point group {_GROUPS[self.kind]!r}."
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._classes)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self._classes.update(self._builtins())
        for entry in entry_points(group=_GROUPS[self.kind]):
            self._classes.setdefault(entry.name, entry.load())


def _builtin_layers() -> dict[str, type]:
    from ctrflow.dense.layers import LAYERS

    return dict(LAYERS)


def _builtin_stages() -> dict[str, type]:
    from ctrflow.stages import STAGES

    return dict(STAGES)


LAYERS = Registry("layer", _builtin_layers)
STAGES = Registry("stage", _builtin_stages)


def register_layer(name: str | None = None, *, override: bool = False) -> Callable[[T], T]:
    """Class decorator registering a dense layer (a `ctrflow.dense.types.Layer`) under `name`."""

    def decorate(cls: T) -> T:
        LAYERS.register(name or getattr(cls, "layer_type", "") or cls.__name__, cls, override=override)
        return cls

    return decorate


def register_stage(name: str | None = None, *, override: bool = False) -> Callable[[T], T]:
    """Class decorator registering a stage (a `ctrflow.stages.types.Stage`) under `name`."""

    def decorate(cls: T) -> T:
        STAGES.register(name or getattr(cls, "stage_name", "") or cls.__name__, cls, override=override)
        return cls

    return decorate
