"""The one reader of the files users hand us (scenarios, suites, run records), bounded so a hostile
or careless file gives a one-line error instead of a traceback, a hang or an exhausted memory.

* only regular files: a FIFO, a device or a directory is refused without blocking (opened
  ``O_NONBLOCK``, checked with ``fstat``);
* a size limit (:data:`MAX_SPEC_BYTES` for scenario and suite files, :data:`MAX_RECORD_BYTES` for
  records), read at most one byte past it;
* text: UTF-8 (a BOM is allowed) or UTF-16/32 with a BOM; anything else names the offending byte;
* YAML (safe loader only): a document may not nest deeper than :data:`MAX_DEPTH`, expand to more
  than :data:`MAX_NODES` nodes through its aliases (a 342-byte "billion laughs" is refused in
  microseconds, before anything is built), hold a recursive alias, repeat a key in one mapping, or
  hold an integer longer than :data:`MAX_INT_DIGITS` digits;
* JSON: no duplicate key, no ``NaN``/``Infinity``, no nesting past the interpreter's recursion limit.

Example::

    data = load_yaml_file("scenarios/api_gold.yaml")      # -> dict | list | scalar | None
    record = load_json_file("reports/run.json", limit_bytes=MAX_RECORD_BYTES)

Each failure raises :class:`~reliability.exceptions.InputError` whose text is
``path: reason`` (``scenarios/x.yaml: invalid YAML: line 3, column 5: duplicate key 'users'``).
"""

from __future__ import annotations

import codecs
import json
import os
import stat
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import NoReturn, TypeAlias

import yaml

from reliability.exceptions import InputError
from reliability.jsontypes import JsonObject, JsonValue

MAX_SPEC_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 512 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_INT_DIGITS = 64
#: a scalar as the safe YAML loader builds it: JSON's, a timestamp (``date``, ``datetime``), ``!!binary``
YamlScalar: TypeAlias = str | int | float | bool | None | date | bytes
#: a YAML document as the safe loader builds it: a mapping's keys are scalars, ``!!set`` is a set and
#: ``!!omap`` / ``!!pairs`` are lists of pairs
YamlValue: TypeAlias = (YamlScalar | list["YamlValue"] | tuple["YamlValue", ...] | set[YamlScalar]
                        | dict[YamlScalar, "YamlValue"])
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_bytes(path: str | os.PathLike[str], limit_bytes: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit_bytes`` of them."""
    source = os.fspath(path)
    try:
        fd = os.open(source, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise InputError(source, f"cannot read file: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
            raise InputError(source, f"cannot read file: {kind} (give a regular file)")
        chunks: list[bytes] = []
        size = 0
        while size <= limit_bytes:
            chunk = os.read(fd, min(1 << 20, limit_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InputError(source, f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit_bytes:
        raise InputError(source, f"file is larger than the {_size(limit_bytes)} limit")
    return b"".join(chunks)


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n} bytes"


def decode_text(source: str, data: bytes) -> str:
    """UTF-8 (optional BOM) or BOM-marked UTF-16/32 text; a bad byte is one line naming it."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1].hex()
        raise InputError(source, f"not valid {encoding.removesuffix('-sig').upper()} text: byte 0x{bad} at "
                                 f"offset {exc.start}") from None
    return text.removeprefix("\ufeff")


def read_text_file(path: str | os.PathLike[str], limit_bytes: int = MAX_SPEC_BYTES) -> str:
    """The decoded text of the regular file ``path`` (see the module docstring)."""
    return decode_text(os.fspath(path), read_bytes(path, limit_bytes))


# -- YAML --------------------------------------------------------------------------------------------


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys and over-long integers."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, YamlValue]:
        seen: set[Hashable] = set()
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {str(key)[:80]!r}",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(ch.isdigit() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(None, None, f"an integer of {digits} digits is too long",
                                                    node.start_mark)
        value: int = super().construct_yaml_int(node)
        return value


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


@dataclass
class _Open:
    """A collection being read: its anchor and how many nodes it expands to so far."""

    anchor: str | None
    nodes: int = 0


def _check_events(events: Iterator[yaml.Event]) -> None:
    """Bound depth and expanded size from the event stream alone (iterative: no recursion, no
    objects built), so an alias bomb or a 100,000-level nesting is refused before loading."""
    stack: list[_Open] = []
    sizes: dict[str, int] = {}
    open_anchors: set[str] = set()
    total = 0
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise _limit(event, f"nested deeper than {MAX_DEPTH} levels")
            stack.append(_Open(event.anchor))
            if event.anchor:
                open_anchors.add(event.anchor)
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            closed = stack.pop()
            count = closed.nodes + 1
            if closed.anchor:
                sizes[closed.anchor] = count
                open_anchors.discard(closed.anchor)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise _limit(event, f"alias *{event.anchor} refers to its own anchor (a recursive structure)")
            count = sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            count = 1
            if event.anchor:
                sizes[event.anchor] = 1
        else:
            continue
        if stack:
            stack[-1].nodes += count
            if stack[-1].nodes > MAX_NODES:
                raise _limit(event, f"expands to more than {MAX_NODES:,} values (aliases counted)")
        else:
            total += count
            if total > MAX_NODES:
                raise _limit(event, f"expands to more than {MAX_NODES:,} values (aliases counted)")


def _limit(event: yaml.Event, reason: str) -> yaml.YAMLError:
    mark = event.start_mark
    return yaml.MarkedYAMLError(problem=reason, problem_mark=mark if isinstance(mark, yaml.Mark) else None)


def parse_yaml(source: str, text: str) -> YamlValue:
    """One YAML document from ``text`` within the limits; errors are :class:`InputError` lines."""
    try:
        _check_events(yaml.parse(text, Loader=yaml.SafeLoader))
        document: YamlValue = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
        return document
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, f"invalid YAML: {where}{problem}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # a scalar the constructors cannot take
        raise InputError(source, f"invalid YAML: {type(exc).__name__}: {str(exc)[:200]}") from None


def load_yaml_file(path: str | os.PathLike[str], limit_bytes: int = MAX_SPEC_BYTES) -> YamlValue:
    """The YAML document in the regular file ``path``, read within every limit above."""
    source = os.fspath(path)
    return parse_yaml(source, read_text_file(path, limit_bytes))


# -- JSON --------------------------------------------------------------------------------------------


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _unique_object(pairs: list[tuple[str, JsonValue]]) -> JsonObject:
    out: JsonObject = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key[:80]!r}")
        out[key] = value
    return out


def parse_json(source: str, text: str) -> JsonValue:
    """One JSON value from ``text``: no NaN/Infinity, no duplicate keys; too deep a nesting is
    the decoder's RecursionError, turned into the same one line."""
    try:
        value: JsonValue = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_object)
        return value
    except (ValueError, RecursionError) as exc:
        raise InputError(source, f"invalid JSON: {str(exc)[:200]}") from None


def load_json_file(path: str | os.PathLike[str], limit_bytes: int = MAX_RECORD_BYTES) -> JsonValue:
    """The JSON value in the regular file ``path``, read within the limits above."""
    source = os.fspath(path)
    return parse_json(source, read_text_file(path, limit_bytes))
