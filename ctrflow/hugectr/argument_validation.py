"""Argument binding and value checks shared by every constructor and function of the `hugectr` facade.

HugeCTR scripts call the v3.5 API both with keywords and positionally (pybind11 order). `bind_arguments`
resolves a call against a declared signature the way pybind11 does, but with messages that name what was
wrong and how to fix it: an unknown keyword lists the valid ones, a missing argument is named, a wrong enum
lists its members, an out-of-range number states the rule. `FacadeObject` is the base of every parameter
object: each resolved argument (defaults included) becomes an attribute under its v3.5 keyword name, and
`obj.kwargs` returns them all.
"""

from __future__ import annotations

import difflib
import enum
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

# (owner, argument name, value) -> the converted value; raises TypeError / ValueError.
Check = Callable[[str, str, Any], Any]


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Argument:
    """One argument of a facade signature: its v3.5 keyword name, its check and its default."""

    name: str
    check: Check
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


def bind_arguments(
    owner: str,
    signature: Sequence[Argument],
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Resolve a call (positional in signature order, then keywords) into checked values by name."""
    names = [argument.name for argument in signature]
    if len(args) > len(names):
        raise TypeError(f"{owner}() takes at most {len(names)} positional arguments but {len(args)} were given")
    given = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        name = (aliases or {}).get(key, key)
        if name not in names:
            raise TypeError(_unexpected_keyword_message(owner, key, names))
        if name in given:
            raise TypeError(f"{owner}() got multiple values for argument '{name}'")
        given[name] = value
    missing = [a.name for a in signature if a.required and a.name not in given]
    if missing:
        required = ", ".join(a.name for a in signature if a.required)
        raise TypeError(
            f"{owner}() missing required argument{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)}; required arguments: {required}"
        )
    return {a.name: a.check(owner, a.name, given.get(a.name, a.default)) for a in signature}


def _unexpected_keyword_message(owner: str, key: str, names: Sequence[str]) -> str:
    message = f"{owner}() got an unexpected keyword argument '{key}'; valid keywords: {', '.join(names)}"
    close = difflib.get_close_matches(key, names, n=1)
    return message + (f". Did you mean '{close[0]}'?" if close else "")


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


# ---------------------------------------------------------------------------------------------------- checks


def _check_range(owner: str, name: str, value: Any, minimum: Any, maximum: Any, exclusive: bool) -> None:
    if minimum is not None and (value <= minimum if exclusive else value < minimum):
        raise ValueError(f"{owner}: {name} must be {'>' if exclusive else '>='} {minimum}, received {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{owner}: {name} must be <= {maximum}, received {value!r}")


def integer(minimum: int | None = None, maximum: int | None = None) -> Check:
    """An int (bool and float rejected, NumPy integers accepted) within [minimum, maximum]."""

    def check(owner: str, name: str, value: Any) -> int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise TypeError(f"{owner}: {name} must be an integer, received {_describe(value)}")
        result = operator.index(value)
        _check_range(owner, name, result, minimum, maximum, exclusive=False)
        return result

    return check


def number(minimum: float | None = None, maximum: float | None = None, exclusive_minimum: bool = False) -> Check:
    """A real number (int or float, bool rejected) converted to float, within the given bounds."""

    def check(owner: str, name: str, value: Any) -> float:
        if isinstance(value, (bool, str)) or not hasattr(value, "__float__"):
            raise TypeError(f"{owner}: {name} must be a number, received {_describe(value)}")
        result = float(value)
        _check_range(owner, name, result, minimum, maximum, exclusive=exclusive_minimum)
        return result

    return check


def boolean() -> Check:
    """True or False (also NumPy bools and the ints 0 / 1, which pybind11 converts)."""

    def check(owner: str, name: str, value: Any) -> bool:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return bool(value)
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise TypeError(f"{owner}: {name} must be True or False, received {_describe(value)}")

    return check


def string() -> Check:
    """A str."""

    def check(owner: str, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{owner}: {name} must be a string, received {_describe(value)}")
        return value

    return check


def enum_member(enum_type: type[enum.Enum], allowed: Sequence[enum.Enum] | None = None) -> Check:
    """A member of `enum_type` (optionally one of `allowed`); a member of another enum is a TypeError."""
    valid = list(allowed) if allowed is not None else list(enum_type)
    listing = ", ".join(str(member) for member in valid)

    def check(owner: str, name: str, value: Any) -> Any:
        if not isinstance(value, enum_type):
            raise TypeError(
                f"{owner}: {name} must be a {enum_type.__name__} member, received {_describe(value)}; valid: {listing}"
            )
        if value not in valid:
            raise ValueError(f"{owner}: {name}={value} is not supported here; valid: {listing}")
        return value

    return check


def instance_of(cls: type, allow_none: bool = False) -> Check:
    """An instance of `cls` (or None when allowed)."""

    def check(owner: str, name: str, value: Any) -> Any:
        if value is None and allow_none:
            return None
        if not isinstance(value, cls):
            hint = " or None" if allow_none else ""
            raise TypeError(f"{owner}: {name} must be a {cls.__name__}{hint}, received {_describe(value)}")
        return value

    return check


def list_of(item: Check, min_length: int = 0) -> Check:
    """A list or tuple (not a str) whose items all pass `item`; returned as a new list."""

    def check(owner: str, name: str, value: Any) -> list[Any]:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{owner}: {name} must be a list, received {_describe(value)}")
        if len(value) < min_length:
            raise ValueError(f"{owner}: {name} must hold at least {min_length} entries, received {list(value)!r}")
        return [item(owner, f"{name}[{index}]", entry) for index, entry in enumerate(value)]

    return check


def str_or_str_list() -> Check:
    """A str (stored as a one-element list; "" as an empty list) or a list of str."""
    as_list = list_of(string())

    def check(owner: str, name: str, value: Any) -> list[str]:
        if isinstance(value, str):
            return [value] if value else []
        return as_list(owner, name, value)

    return check


def int_pair() -> Check:
    """A two-element (int, int) sequence, returned as a tuple (Slice ranges)."""
    to_int = integer()

    def check(owner: str, name: str, value: Any) -> tuple[int, int]:
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) != 2:
            raise TypeError(f"{owner}: {name} must be a pair (start, end), received {_describe(value)}")
        return (to_int(owner, name, value[0]), to_int(owner, name, value[1]))

    return check


def any_value() -> Check:
    """No check (for arguments validated by the caller)."""

    def check(owner: str, name: str, value: Any) -> Any:
        return value

    return check


# ----------------------------------------------------------------------------------------- parameter objects


def _fresh(value: Any) -> Any:
    """A copy of list / dict containers so that callers cannot mutate a stored value in place."""
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


def _rebuild(cls: type[FacadeObject], values: dict[str, Any]) -> FacadeObject:
    obj = cls.__new__(cls)
    object.__setattr__(obj, "_values", values)
    return obj


class FacadeObject:
    """Base of the facade's parameter objects: a checked, by-name record of one v3.5 call.

    Subclasses declare `_owner` (the name used in messages), `_signature` (arguments in pybind11 order),
    optionally `_aliases` (extra keyword spellings) and `_writable` (fields that may be assigned, each checked
    on assignment), and override `_check_values` for rules that involve several arguments.
    """

    __slots__ = ("_values",)
    _owner: ClassVar[str] = ""
    _signature: ClassVar[tuple[Argument, ...]] = ()
    _aliases: ClassVar[Mapping[str, str]] = {}
    _writable: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        values = bind_arguments(self._owner, self._signature, args, kwargs, self._aliases)
        self._check_values(values)
        object.__setattr__(self, "_values", values)

    def _check_values(self, values: dict[str, Any]) -> None:
        """Cross-argument rules; raise ValueError / TypeError. The default has none."""

    def __getattr__(self, name: str) -> Any:
        if name == "_values":
            raise AttributeError(name)
        values = object.__getattribute__(self, "_values")
        if name in values:
            return _fresh(values[name])
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        arguments = {a.name: a for a in self._signature}
        if name not in arguments:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '{name}'; fields: {', '.join(arguments)}"
            )
        if not self._writable:
            raise AttributeError(
                f"{type(self).__name__}.{name} is read-only; pass {name}=... to {self._owner}() instead"
            )
        # Only the field itself is checked here: rules across fields run in `validate()`, when the object is
        # used, so that related fields can be assigned one after the other.
        self._values[name] = arguments[name].check(type(self).__name__, name, value)

    def validate(self) -> None:
        """Check the rules that involve several fields again (for objects whose fields were assigned)."""
        values = dict(self._values)
        self._check_values(values)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._values))

    @property
    def kwargs(self) -> dict[str, Any]:
        """Every resolved argument (defaults included) by its v3.5 keyword name, in signature order."""
        return _fresh(dict(self._values))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({body})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self._values)))
