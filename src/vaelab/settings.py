"""Settings: dataclass fields that carry their help text and their valid range, checked once.

A configuration dataclass declares each field with ``setting(default, help, ...)``. One function,
``check_settings``, validates every such field of an instance from that metadata, so each range
is written in exactly one place. ``add_setting_arguments`` turns the same fields into argparse
flags. Errors name the setting (``z_dim``); the CLI shows them as flags (``--z-dim``), so the
layers below the CLI never mention command-line syntax.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from dataclasses import Field, dataclass, field, fields
from typing import Any, cast

from vaelab.errors import VaelabError

__all__ = [
    "SEED",
    "Rule",
    "SettingError",
    "add_setting_arguments",
    "check_settings",
    "flag_name",
    "setting",
    "setting_fields",
]


def flag_name(name: str) -> str:
    """The command-line flag of a setting: ``z_dim`` -> ``--z-dim``."""
    return "--" + name.replace("_", "-")


class SettingError(VaelabError):
    """A setting outside its valid range; ``flag_message`` words it for the command line."""

    def __init__(self, name: str, requirement: str, value: Any) -> None:
        self.name, self.requirement, self.value = name, requirement, value
        super().__init__(self._worded(name))

    def _worded(self, name: str) -> str:
        return f"{name} must be {self.requirement}, got {self.value!r}"

    def flag_message(self) -> str:
        return self._worded(flag_name(self.name))

    def file_message(self, path: str) -> str:
        """Worded for a settings file, whose keys may be written with dashes."""
        return (f"config file {path}: {self._worded(self.name.replace('_', '-'))}; fix it in "
                f"the file or override it with {flag_name(self.name)}")


@dataclass(frozen=True)
class Rule:
    """A number's valid range: ``low`` is "positive" or "non-negative", ``upper`` inclusive
    (exclusive with ``below_upper``)."""

    low: str  # "positive" (> 0) or "non-negative" (>= 0)
    upper: float | None = None  # largest accepted value, when there is one
    below_upper: bool = False  # True: the value must be strictly less than ``upper``

    def requirement(self, kind: type, plural: bool = False) -> str:
        most = "less than" if self.below_upper else "at most"
        if plural:  # the rule of every item of a list
            word = "integers" if kind is int else "numbers"
            sign = "positive " if self.low == "positive" else "non-negative "
            upper = "" if self.upper is None else \
                f" {most if self.below_upper else 'up to'} {self.upper:g}"
            return f"{sign}{word}{upper}"
        sign = "a positive " if self.low == "positive" else "an "
        if kind is int:
            start = 1 if self.low == "positive" else 0
            if self.upper is not None:
                last = int(self.upper) - (1 if self.below_upper else 0)
                return f"{sign}integer from {start} to {last}"
            return f"{sign}integer of at least {start}"
        if self.upper is not None:
            bound = "greater than 0" if self.low == "positive" else "0 or more"
            return f"a number {bound} and {most} {self.upper:g}"
        return "a positive number (greater than 0)" if self.low == "positive" \
            else "a number of 0 or more"

    def accepts(self, value: float) -> bool:
        above = value > 0 if self.low == "positive" else value >= 0
        if self.upper is None:
            return above
        return above and (value < self.upper if self.below_upper else value <= self.upper)

    def check(self, name: str, value: Any, kind: type) -> Any:
        """``value`` as ``kind`` when it is in range, else a SettingError naming ``name``."""
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SettingError(name, kind.__name__, value)
        number = cast(float, value)
        if kind is float and not math.isfinite(number):
            raise SettingError(name, "a finite number", value)
        if not self.accepts(number):
            raise SettingError(name, self.requirement(kind), value)
        return value

    def parser(self, name: str, kind: type = int) -> Any:
        """An argparse ``type=`` that applies this rule to a flag of its own (e.g. --seed)."""
        def parse(text: str) -> Any:
            try:
                value = kind(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{flag_name(name)} expects {kind.__name__}, got {text!r}") from None
            try:
                return self.check(name, value, kind)
            except SettingError as exc:
                raise argparse.ArgumentTypeError(exc.flag_message()) from None

        parse.__name__ = kind.__name__
        return parse


# Every seed in vaelab: torch's generator overflows above 2**63, numpy's above 2**32 - 1.
SEED = Rule("non-negative", upper=2**32 - 1)


def setting(default: Any, help: str, rule: Rule | None = None, choices: tuple[str, ...] = (),
            flag: bool = True, factory: Any = None) -> Any:
    """A dataclass field with its help, its range (``rule``) or ``choices``, and whether it
    gets a command-line flag."""
    metadata = {"help": help, "rule": rule, "choices": choices, "flag": flag}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def setting_fields(cls: type) -> list[Field[Any]]:
    """The fields of ``cls`` declared with ``setting``."""
    return [f for f in fields(cls) if "help" in f.metadata]


def _kind(cls: type, f: Field[Any]) -> Any:
    """A field's type without ``| None``: int, float, str, bool, or a tuple type."""
    hint = typing.get_type_hints(cls)[f.name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def check_settings(obj: Any) -> None:
    """Validate every ``setting`` field of a dataclass instance; coerce ints given for floats."""
    cls = type(obj)
    for f in setting_fields(cls):
        value = getattr(obj, f.name)
        if value is None:
            continue
        kind = _kind(cls, f)
        rule, choices = f.metadata["rule"], f.metadata["choices"]
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            if not isinstance(value, tuple | list):
                raise SettingError(f.name, f"a list of {item.__name__}", value)
            try:
                checked = tuple(rule.check(f.name, v, item) if rule else v for v in value)
            except SettingError:
                raise SettingError(f.name, rule.requirement(item, plural=True),
                                   list(value)) from None
            object.__setattr__(obj, f.name, checked)
            continue
        if rule is not None:
            object.__setattr__(obj, f.name, rule.check(f.name, value, kind))
        elif kind in (bool, str) and not isinstance(value, kind):
            raise SettingError(f.name, kind.__name__, value)
        if choices and value not in choices:
            raise SettingError(f.name, f"one of {', '.join(choices)}", value)


def _parser_for(kind: Any, name: str) -> Any:
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]

        def parse_list(text: str) -> tuple[Any, ...]:
            try:
                values = tuple(item(part) for part in text.split(",") if part.strip())
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{flag_name(name)} expects comma-separated {item.__name__} values such "
                    f"as 1,2,5, got {text!r}") from None
            if not values:
                raise argparse.ArgumentTypeError(f"{flag_name(name)} needs at least one value")
            return values

        return parse_list

    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag_name(name)} expects {kind.__name__}, got {text!r}") from None

    parse.__name__ = kind.__name__
    return parse


def _shown_default(f: Field[Any]) -> str:
    if f.default is dataclasses.MISSING or f.default is None:
        return ""  # the help text says what happens by default
    value = f.default
    if isinstance(value, tuple):
        value = ",".join(str(v) for v in value)
    return f" (default: {value})"


def add_setting_arguments(parser: argparse.ArgumentParser | Any, cls: type,
                          exclude: Iterable[str] = (),
                          defaults: dict[str, Any] | None = None) -> None:
    """One flag per ``setting`` field of ``cls`` (those with ``flag=True``).

    Flags default to "not given" (argparse.SUPPRESS), so lower layers (presets, files, a saved
    configuration) show through; ``defaults`` overrides the default shown in the help.
    """
    skip, shown = set(exclude), defaults or {}
    for f in setting_fields(cls):
        if f.name in skip or not f.metadata["flag"]:
            continue
        kind = _kind(cls, f)
        default = _shown_default(f)
        if f.name in shown:
            default = f" (default: {shown[f.name]})"
        # argparse %-formats help strings, so a literal "%" must be doubled.
        help_text = f"{f.metadata['help']}{default}".replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag_name(f.name), action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            metavar = f.name.upper() if typing.get_origin(kind) is not tuple \
                else f"{f.name.upper()},..."
            parser.add_argument(flag_name(f.name), type=_parser_for(kind, f.name),
                                default=argparse.SUPPRESS, metavar=metavar, help=help_text)


def given_settings(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The ``setting`` fields of ``cls`` that were given on the command line."""
    values = vars(args)
    return {f.name: values[f.name] for f in setting_fields(cls) if f.name in values}
