"""The one reader of user files: what it accepts (UTF-8/UTF-16 with BOM, merge keys, aliases
within bounds) and the one-line reasons it gives for the rest."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest

from reliability.config import load_scenario
from reliability.exceptions import InputError, ScenarioError
from reliability.inputfile import MAX_NODES, load_json_file, load_yaml_file, parse_json, parse_yaml, read_bytes


def test_utf8_and_bom_marked_utf16_are_read(tmp_path: Path) -> None:
    for name, data in (("a.yaml", "name: café\n".encode()), ("b.yaml", codecs.BOM_UTF8 + "name: café\n".encode()),
                       ("c.yaml", codecs.BOM_UTF16_LE + "name: café\n".encode("utf-16-le"))):
        (tmp_path / name).write_bytes(data)
        assert load_yaml_file(tmp_path / name) == {"name": "café"}


def test_bad_bytes_are_named(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(InputError, match=r"bad.yaml: not valid UTF-8 text: byte 0xe9 at offset 9"):
        load_yaml_file(tmp_path / "bad.yaml")


def test_only_regular_files_within_the_size_limit(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="a FIFO"):
        read_bytes(tmp_path / "pipe")  # returns at once: opened non-blocking, refused by fstat
    with pytest.raises(InputError, match="a directory"):
        read_bytes(tmp_path)
    (tmp_path / "big").write_bytes(b"x" * 2049)
    with pytest.raises(InputError, match="larger than the 2048 bytes limit"):
        read_bytes(tmp_path / "big", limit_bytes=2048)
    assert read_bytes(tmp_path / "big", limit_bytes=2049) == b"x" * 2049


def test_yaml_aliases_merges_and_limits() -> None:
    assert parse_yaml("f", "a: &x {b: 1}\nc: {<<: *x, d: 2}\nlist: [*x, *x]\n") == {
        "a": {"b": 1}, "c": {"b": 1, "d": 2}, "list": [{"b": 1}, {"b": 1}]}
    wide = "a: &a [" + ", ".join(["1"] * 1000) + "]\n" + "b: [" + ", ".join(["*a"] * 300) + "]\n"
    with pytest.raises(InputError, match=f"expands to more than {MAX_NODES:,}"):
        parse_yaml("f", wide)
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        parse_yaml("f", "[" * 65 + "]" * 65)
    assert parse_yaml("f", "[" * 60 + "]" * 60) is not None
    with pytest.raises(InputError, match="line 3, column 1: duplicate key 'a'"):
        parse_yaml("f", "a: 1\nb: 2\na: 3\n")
    with pytest.raises(InputError, match="integer of 70 digits"):
        parse_yaml("f", "n: " + "1" * 70)
    with pytest.raises(InputError, match="could not determine a constructor"):
        parse_yaml("f", "x: !!python/object:os.system 'true'\n")


def test_json_is_strict() -> None:
    assert parse_json("r", '{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    for text, reason in (('{"a": NaN}', "NaN is not a JSON number"), ('{"a": -Infinity}', "-Infinity is not"),
                         ('{"a": 1, "a": 2}', "duplicate key 'a'"), ("[" * 100_000, "invalid JSON: "),
                         ('{"a": ' + "9" * 5000 + "}", "invalid JSON: ")):
        with pytest.raises(InputError, match=reason):
            parse_json("r", text)


def test_json_files_go_through_the_same_reader(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_bytes(codecs.BOM_UTF8 + b'{"schema_version": 2}')
    assert load_json_file(tmp_path / "r.json") == {"schema_version": 2}


def test_an_empty_scenario_file_is_an_error_everywhere(tmp_path: Path) -> None:
    for text in ("", "# only a comment\n", "---\n"):
        (tmp_path / "e.yaml").write_text(text)
        with pytest.raises(ScenarioError, match="e.yaml: the file is empty"):
            load_scenario(tmp_path / "e.yaml")
