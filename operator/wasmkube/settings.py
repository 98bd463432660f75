"""Command-line flags and environment variables derived from one pydantic model per program.

A program's settings are written once, as the fields of a pydantic model. `Settings(model, prefix)`
adds one flag per field to an argparse parser and reads one environment variable per field, so a
flag, its variable, its help text, its default and its validation cannot drift apart:

- Spelling: field `resync_seconds` is flag `--resync-seconds` and variable `PREFIX` +
  `RESYNC_SECONDS`. A `Flag(...)` in the field's `Annotated` metadata may spell the flag otherwise
  (the singular `--namespace` of the repeatable `namespaces`), add a short flag, further fallback
  variables, a mutually exclusive group or a flag that resets the field to its default.
- Help: the field's description (required), then "default: ..." (the model's default) and the
  variable(s) read.
- Type and validation: the field's own. Flags and variables are handed to the model as text, so
  one validation path refuses a bad value whichever way it came.

Precedence, per field: the flag, else the first variable that is set, else the model's default.
A variable set to the empty string counts as unset (how templates say "nothing"). A flag of a
mutually exclusive group also decides for the group's other fields: their variables are not read.

Value syntax:
- booleans: `--x` / `--no-x`; a variable holds 1/true/yes/on or 0/false/no/off (any case);
- tuples: the flag is repeatable and each value may be a comma-separated list; a variable holds a
  comma- or space-separated list;
- everything else: one value, converted by the model (`"64"` becomes 64).

A refused value raises `SettingsError`, whose message is one line naming the flag, the variable,
the value and where it came from. `from_args_or_exit` prints it as argparse prints its own errors
(`PROG: error: ...`) and exits 2, argparse's code for a bad command line, instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)


class SettingsError(ValueError):
    """A setting was refused; the message is one line naming its flag and its variable."""


@dataclass(frozen=True)
class Flag:
    """How a field's flag differs from the one derived from its name (in `Annotated[...]`)."""

    flag: str = ""  # the long flag, e.g. "--namespace" for the field `namespaces`
    short: str = ""  # e.g. "-n"
    fallback_env: tuple[str, ...] = ()  # read in this order while the field's own variable is unset
    exclusive: str = ""  # fields naming the same group cannot be given together
    reset: tuple[str, ...] = ()  # flags that set the field back to its default, e.g. ("-A", "--all-namespaces")
    reset_help: str = ""


class Kind(Enum):
    VALUE = "value"
    SWITCH = "switch"  # a boolean: --x / --no-x
    LIST = "list"  # a tuple: repeatable, comma-separated


class _Reset:
    """What a reset flag stores: "the default", which is not the same as "not given"."""


_RESET = _Reset()


@dataclass(frozen=True)
class Setting:
    """One field as the command line and the environment see it."""

    field: str
    flag: str
    env: str
    kind: Kind
    default: Any
    description: str
    spec: Flag
    choices: tuple[str, ...] = ()

    @property
    def envs(self) -> tuple[str, ...]:
        return (self.env, *self.spec.fallback_env)

    @property
    def names(self) -> str:
        return f"{self.flag} / {self.env}"

    @property
    def help(self) -> str:
        parts = ["repeatable, or comma-separated"] if self.kind is Kind.LIST else []
        parts += [f"default: {shown_default(self.default)}", "env " + ", then ".join(self.envs)]
        return f"{self.description} ({'; '.join(parts)})".replace("%", "%%")

    @property
    def metavar(self) -> str:
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        return self.flag.lstrip("-").upper().replace("-", "_")


def shown_default(default: Any) -> str:
    """A default as --help shows it."""
    if default is None or default == ():
        return "none"
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def setting_of(name: str, info: FieldInfo, env_prefix: str) -> Setting:
    if not info.description:
        raise TypeError(f"setting {name} has no description: --help would have nothing to say")
    spec = next((m for m in info.metadata if isinstance(m, Flag)), Flag())
    annotation = _without_none(info.annotation)
    if annotation is bool:
        kind = Kind.SWITCH
    elif get_origin(annotation) is tuple:
        kind = Kind.LIST
    else:
        kind = Kind.VALUE
    choices = tuple(str(a) for a in get_args(annotation)) if get_origin(annotation) is Literal else ()
    return Setting(
        field=name,
        flag=spec.flag or "--" + name.replace("_", "-"),
        env=env_prefix + name.upper(),
        kind=kind,
        default=info.get_default(call_default_factory=True),
        description=info.description,
        spec=spec,
        choices=choices,
    )


def _flag_items(values: list[str]) -> list[str]:
    # Empty items are kept: the model refuses them, naming the flag (a typo, not "nothing").
    return [item.strip() for value in values for item in value.split(",")]


def _env_items(text: str) -> list[str]:
    return text.replace(",", " ").split()


class Settings(Generic[M]):
    """The flags and variables of one settings model."""

    def __init__(self, model: type[M], env_prefix: str) -> None:
        self.model = model
        self.settings = tuple(setting_of(name, info, env_prefix) for name, info in model.model_fields.items())

    def setting(self, field: str) -> Setting:
        return next(s for s in self.settings if s.field == field)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """One flag per field (plus reset flags). Each leaves None, argparse's default, when not given."""
        groups: dict[str, argparse._MutuallyExclusiveGroup] = {}
        for s in self.settings:
            group = s.spec.exclusive or (s.field if s.spec.reset else "")
            if group and group not in groups:
                groups[group] = parser.add_mutually_exclusive_group()
            target: argparse._ActionsContainer = groups[group] if group else parser
            names = [n for n in (s.spec.short, s.flag) if n]
            if s.kind is Kind.SWITCH:
                target.add_argument(*names, dest=s.field, action=argparse.BooleanOptionalAction, help=s.help)
            else:
                action = "append" if s.kind is Kind.LIST else "store"
                target.add_argument(*names, dest=s.field, action=action, metavar=s.metavar, help=s.help)
            if s.spec.reset:
                reset_help = s.spec.reset_help.replace("%", "%%")
                target.add_argument(*s.spec.reset, dest=s.field, action="store_const", const=_RESET, help=reset_help)
        if parser.epilog is None:
            parser.epilog = "Each flag falls back to its environment variable, then to its default."

    def from_args(self, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> M:
        """The model from parsed flags and the environment (flag > variable > default)."""
        env = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        sources: dict[str, str] = {}
        decided = {
            s.spec.exclusive for s in self.settings if s.spec.exclusive and getattr(args, s.field, None) is not None
        }
        for s in self.settings:
            value = getattr(args, s.field, None)
            if value is not None:
                if value is not _RESET:
                    raw[s.field] = _flag_items(value) if s.kind is Kind.LIST else value
                    sources[s.field] = s.flag
                continue
            if s.spec.exclusive in decided:
                continue
            for name in s.envs:
                text = env.get(name, "").strip()
                parsed: Any = _env_items(text) if s.kind is Kind.LIST else text
                if parsed:
                    raw[s.field], sources[s.field] = parsed, name
                    break
        self._check_exclusive(sources)
        try:
            return self.model.model_validate(raw)
        except ValidationError as exc:
            raise SettingsError(self._explain(exc, sources)) from None

    def from_args_or_exit(self, args: argparse.Namespace, prog: str, environ: Mapping[str, str] | None = None) -> M:
        """`from_args`, or argparse's way out: `PROG: error: ...` on stderr and exit code 2."""
        try:
            return self.from_args(args, environ)
        except SettingsError as exc:
            sys.stderr.write(f"{prog}: error: {exc}\n")
            raise SystemExit(2) from None

    def _check_exclusive(self, sources: Mapping[str, str]) -> None:
        """Argparse keeps two flags of a group apart; this keeps two variables apart as well."""
        groups: dict[str, list[Setting]] = {}
        for s in self.settings:
            if s.spec.exclusive and s.field in sources:
                groups.setdefault(s.spec.exclusive, []).append(s)
        for members in groups.values():
            if len(members) > 1:
                given = " and ".join(f"{s.names} (from {sources[s.field]})" for s in members)
                raise SettingsError(f"{given} exclude each other: give only one")

    def _explain(self, exc: ValidationError, sources: Mapping[str, str]) -> str:
        fields = {s.field: s for s in self.settings}
        problems: list[str] = []
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            s = fields.get(str(loc[0])) if loc else None
            message = error["msg"].removeprefix("Value error, ")
            if s is None:
                problems.append(message)
            else:
                problems.append(f"{s.names}: {error['input']!r} from {sources.get(s.field, 'the default')}: {message}")
        return "; ".join(problems)
