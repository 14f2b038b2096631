"""Typed settings to and from plain data: strict loading, checked overrides, plain dicts.

Settings are frozen dataclasses whose field annotations say what a value may be. The
annotations understood: ``int``, ``float`` (an ``int`` is accepted, as in PEP 484), ``str``,
``bool``, ``None``, unions, ``Literal``, ``Any``, ``dict[K, V]``, ``tuple[T, ...]`` and
``tuple[A, B]`` (a JSON array: a list or a tuple of those items) and nested settings classes.

Sequences are held as tuples (so that the defaults can be immutable) and given out as lists,
as JSON writes them. Every error names the dotted path of the setting it is about.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_settings(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _keys(cls: type, given: Mapping[str, Any], path: str) -> None:
    """Raise KeyError for a key of ``given`` that is no field of ``cls``, naming its path and the fields."""
    fields = _hints(cls)
    for key in given:
        if key not in fields:
            raise KeyError(f"{_join(path, str(key))}: unknown setting; {path or 'the profile'} has "
                           f"{', '.join(fields)}")


def load(cls: type[T], data: Any, path: str = "") -> T:
    """``data`` (a mapping with exactly the fields of settings class ``cls``) as a checked instance.

    Raises:
        KeyError: for a missing or an unknown key (its path named).
        TypeError: for a value of the wrong type (its path named).
    """
    if not _is_mapping(data):
        raise TypeError(f"{path or 'the profile'}: expected a mapping of {cls.__name__} settings, got {data!r}")
    _keys(cls, data, path)
    hints = _hints(cls)
    missing = [key for key in hints if key not in data]
    if missing:
        raise KeyError(f"{', '.join(_join(path, key) for key in missing)}: missing")
    return cls(**{key: checked(data[key], hint, _join(path, key)) for key, hint in hints.items()})


def override(settings: T, changes: Mapping[str, Any], path: str = "") -> T:
    """``settings`` with ``changes`` on top: a nested mapping of the values that differ.

    A mapping given for nested settings changes only the keys it names; any other value
    replaces the old one whole.

    Raises:
        KeyError: for a key that is no setting (its path named).
        TypeError: for a value of the wrong type (its path named).
    """
    cls = type(settings)
    _keys(cls, changes, path)
    hints = _hints(cls)
    new = {}
    for key, change in changes.items():
        current, where = getattr(settings, key), _join(path, key)
        if dataclasses.is_dataclass(current) and _is_mapping(change):
            new[key] = override(current, change, where)
        else:
            new[key] = checked(change, hints[key], where)
    return dataclasses.replace(settings, **new)  # type: ignore[type-var]


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _is_mapping(value: Any) -> bool:
    return isinstance(value, dict) or isinstance(value, Mapping)  # the concrete check first: it is fast


@functools.cache
def _shape(hint: Any) -> tuple[str, tuple[Any, ...]]:
    """What kind of annotation ``hint`` is, and its arguments (cached: profiles are checked often)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return "any", ()
    if _is_settings(hint):
        return "settings", ()
    if origin in (Union, types.UnionType):
        return "union", args
    if origin is Literal:
        return "literal", args
    if origin is tuple:
        return ("sequence", args[:1]) if len(args) == 2 and args[1] is Ellipsis else ("tuple", args)
    if origin is dict:
        return "dict", args
    return ("float", ()) if hint is float else ("type", ())


def checked(value: Any, hint: Any, path: str) -> Any:
    """``value`` checked against annotation ``hint``, sequences as tuples.

    Raises:
        TypeError: naming ``path``, the expected type and the value (KeyError from nested settings).
    """
    kind, args = _shape(hint)
    if kind == "any":
        return value
    if kind == "settings":
        return load(hint, value, path)
    if kind == "union":
        if value is None and type(None) in args:
            return None
        for arm in args:
            if _is_settings(arm) and _is_mapping(value):
                return load(arm, value, path)  # its own errors say more than "expected X | None"
            try:
                return checked(value, arm, path)
            except TypeError:
                continue
    elif kind == "literal":
        if any(type(value) is type(option) and value == option for option in args):
            return value
    elif kind == "sequence" and isinstance(value, (list, tuple)):
        return tuple(checked(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
    elif kind == "tuple" and isinstance(value, (list, tuple)) and len(value) == len(args):
        pairs = enumerate(zip(value, args, strict=True))
        return tuple(checked(item, arm, f"{path}[{i}]") for i, (item, arm) in pairs)
    elif kind == "dict" and _is_mapping(value):
        return {checked(k, args[0], f"{path} key"): checked(v, args[1], f"{path}[{k!r}]") for k, v in value.items()}
    elif kind == "float" and type(value) in (int, float):
        return value
    elif kind == "type" and type(value) is hint:
        return value
    raise TypeError(f"{path}: expected {_describe(hint)}, got {value!r}")


def plain(value: Any) -> Any:
    """Settings as plain data (a fresh copy): dicts, lists and scalars, as a JSON file would hold them."""
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value
