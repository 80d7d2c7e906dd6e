"""The one validator of the dataclasses: rules declared per field, checked by :func:`validate`.

A field states its rules in its ``metadata`` (:func:`rule` builds it): its kind comes from the
annotation (``int``, ``float``, ``str``, ``bool``, ``tuple``, optionally ``| None``), and
``min``/``max`` (inclusive), ``above`` (exclusive lower bound), ``choices`` and ``check`` (a
predicate on the whole instance, for rules between fields, with its ``rule`` text) add to it.
:func:`validate` checks them all and raises ``ValueError`` naming the field, the rule and the value,
in the shape ``config field 'population' must be in 2..100000; got 1`` (Optuna's "``low <= high``
must hold, but got ..." habit). Lives in :mod:`gp_search.lang`, which imports nothing else of the
package, so the proxies can use it too.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Budget:
    ...     steps: int = rule(10, "optimiser steps", min=1, max=1000)
    ...     def __post_init__(self):
    ...         validate(self, "budget field")
    >>> Budget(0)
    Traceback (most recent call last):
    ...
    ValueError: budget field 'steps' must be in 1..1000; got 0
"""

from __future__ import annotations

import math
from dataclasses import field, fields

KINDS = {"int": int, "float": float, "str": str, "bool": bool, "tuple": tuple}
"""Annotation text -> the Python type a field of that kind holds."""

_KIND_NAMES = {"int": "int", "float": "a number", "str": "str", "bool": "bool", "tuple": "tuple"}


def rule(default, help: str, *, min=None, max=None, above=None, choices=None, check=None,
         note: str = "", **metadata):
    """A dataclass field with its help text and its rules in ``metadata``.

    Args:
        default: the default value (tuples for sequences: dataclass defaults must be immutable).
        help: one line for the CLI's ``--help``.
        min, max: inclusive bounds of a number.
        above: exclusive lower bound of a number (``above=0``: must be > 0).
        choices: the allowed values.
        check: ``(predicate(instance, value) -> bool, rule text)`` for a rule that involves
            other fields (``rule text`` completes "... must ").
        note: said after the rule when it is broken, e.g. ``"(0: none)"``.
        **metadata: anything else the field's users read (e.g. ``flag`` for the CLI).

    Returns:
        A :func:`dataclasses.field`.
    """
    rules = {k: v for k, v in (("min", min), ("max", max), ("above", above),
                               ("choices", choices), ("check", check), ("note", note or None))
             if v is not None}
    return field(default=default, metadata={"help": help, **rules, **metadata})


def is_kind(value, kind: str) -> bool:
    """Whether ``value`` is of ``kind`` (``int``, ``float``/``number``, ``str``, ``bool``,
    ``tuple``/``list``); a bool is never a number, an int is a number.

    Example:
        >>> is_kind(3, "float"), is_kind(True, "int"), is_kind("3", "int")
        (True, False, False)
    """
    if kind in ("float", "number"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("tuple", "list"):
        return isinstance(value, (tuple, list))
    return isinstance(value, KINDS[kind])


def _kind(annotation: str) -> tuple[str | None, bool]:
    """(kind, None allowed) of an annotation text such as ``"int"`` or ``"str | None"``."""
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    parts = [p.strip() for p in text.split("|")]  # without postponed annotations: str | None
    optional = "None" in parts
    kinds = [p for p in parts if p != "None"]
    return (kinds[0] if len(kinds) == 1 and kinds[0] in KINDS else None), optional


def _quote(values) -> str:
    texts = [repr(str(v)) if isinstance(v, str) else repr(v) for v in values]  # enums too
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def _number_rule(meta: dict, kind: str) -> str | None:
    """The text of a field's bounds, e.g. ``must be in 2..100000`` or ``must be >= 0``."""
    lo, hi, above = (meta.get(k) for k in ("min", "max", "above"))
    lo_, hi_, above_ = (format(x, "g") if isinstance(x, float) else x for x in (lo, hi, above))
    if lo is not None and hi is not None:
        return f"must be in {lo_}..{hi_}" if kind == "int" else f"must be in [{lo_}, {hi_}]"
    if lo is not None:
        return f"must be >= {lo_}"
    if above is not None:
        return f"must be > {above_}"
    if hi is not None:
        return f"must be <= {hi_}"
    return None


def _in_bounds(value, meta: dict) -> bool:
    lo, hi, above = meta.get("min"), meta.get("max"), meta.get("above")
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return ((lo is None or value >= lo) and (hi is None or value <= hi)
            and (above is None or value > above))


def validate(instance, what: str = "field") -> None:
    """Check every field of a dataclass instance against the rules in its metadata.

    Values in the forms JSON and TOML give are normalised first, in place (also on frozen
    instances): an ``int`` in a ``float`` field becomes a float, a list in a ``tuple`` field a
    tuple. Fields without a known kind or rules are left alone.

    Args:
        instance: a dataclass instance whose fields carry :func:`rule` metadata.
        what: how the message names a field's owner, e.g. ``"config field"``.

    Raises:
        ValueError: ``{what} '{name}' must be {kind}, got {value!r}`` for a value of the wrong
            kind; ``{what} '{name}' {rule}; got {value!r}`` for one outside its rule.
    """
    checked = []
    for f in fields(instance):  # every kind first: the rules between fields compare values
        value = getattr(instance, f.name)
        kind, optional = _kind(f.type)
        if kind is None or (optional and value is None):
            continue
        if kind == "tuple" and isinstance(value, list):
            value = tuple(value)
            object.__setattr__(instance, f.name, value)
        if kind == "float" and is_kind(value, "int"):
            value = float(value)
            object.__setattr__(instance, f.name, value)
        if not (is_kind(value, kind) and (kind != "tuple" or isinstance(value, tuple))):
            raise ValueError(f"{what} {f.name!r} must be {_KIND_NAMES[kind]}"
                             f"{' or None' if optional else ''}, got {value!r}")
        checked.append((f, kind, value))
    for f, kind, value in checked:
        meta = f.metadata
        text = _number_rule(meta, kind) if kind in ("int", "float") else None
        if text and not _in_bounds(value, meta):
            if isinstance(value, float) and not math.isfinite(value):
                text += " and finite"
            if meta.get("note"):
                text += " " + meta["note"]
            raise ValueError(f"{what} {f.name!r} {text}; got {value!r}")
        if "choices" in meta and value not in meta["choices"]:
            raise ValueError(f"{what} {f.name!r} must be {_quote(meta['choices'])}; got {value!r}")
        if "check" in meta:
            predicate, text = meta["check"]
            if not predicate(instance, value):
                raise ValueError(f"{what} {f.name!r} must {text}; got {value!r}")

__all__ = ["KINDS", "is_kind", "rule", "validate"]
