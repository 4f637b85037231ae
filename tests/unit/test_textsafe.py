"""Text from the target shown safely: control and bidi characters visible, long names shortened
with a hash, in every report format; the record keeps the raw, full name."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

from reliability.masking import MaskingFilter
from reliability.report import render
from reliability.textsafe import MAX_NAME_CHARS, display, display_data, neutralize, shorten, shorten_line
from tests.support.records import hostile

RAW = "\x1b[2J\x1b[31mpwned\r\x00\u202egnp.exe\u2066x\u2069\x7f\x85"
LONG = "/api/" + "a" * 10_000


def test_neutralize_shows_every_control_and_bidi_character() -> None:
    assert neutralize(RAW) == "\\x1b[2J\\x1b[31mpwned\\x0d\\x00\\u202egnp.exe\\u2066x\\u2069\\x7f\\x85"
    assert neutralize("plain café ✓") == "plain café ✓"


def test_shorten_keeps_the_start_and_a_hash_of_the_whole() -> None:
    a, b = shorten(LONG), shorten(LONG + "b")
    assert len(a) == MAX_NAME_CHARS and a.startswith("/api/aaa") and "…#" in a and a != b
    assert shorten("/short") == "/short"
    line = shorten_line("FAIL GET " + LONG + " p95 300 ms > 200 ms", 600)
    assert len(line) == 600 and line.endswith("p95 300 ms > 200 ms")


def test_display_data_shortens_names_not_prose() -> None:
    shown = display_data({"name": LONG, "message": "m" * 1500, "detail": RAW, LONG: 1})
    assert len(shown["name"]) == MAX_NAME_CHARS and len(shown["message"]) == 1500
    assert shown["detail"] == neutralize(RAW) and display(LONG) in shown


def _hostile_record() -> dict[str, object]:
    record = hostile()
    record["endpoints"][0]["name"] = RAW + LONG  # type: ignore[index]
    record["errors"] = [{"type": "GET", "name": RAW + LONG, "message": RAW, "count": 3}]
    criterion = record["sla"]["criteria"][-1]  # type: ignore[index]
    criterion["name"], criterion["scope"] = f"GET {RAW + LONG} p95_ms", f"GET {RAW + LONG}"
    return record


def test_every_report_format_neutralizes_and_shortens() -> None:
    record = _hostile_record()
    for fmt in ("html", "junit", "md"):
        text = render(record, fmt)
        assert not any(ch in text for ch in ("\x1b", "\x00", "\r", "\u202e", "\u2066", "\x7f", "\x85")), fmt
        assert "a" * 1000 not in text, fmt
        assert "…" in text, fmt
    ET.fromstring(render(record, "junit"))  # still well-formed XML
    assert record["endpoints"][0]["name"] == RAW + LONG  # type: ignore[index]  # the record itself untouched


def test_log_lines_are_neutralized_and_cut_in_the_middle() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "FAIL %s p95 %d ms", (RAW + LONG, 300), None)
    MaskingFilter().filter(record)
    line = record.getMessage()
    assert "\x1b" not in line and "\u202e" not in line and len(line) <= 600 and line.endswith("p95 300 ms")
