from __future__ import annotations

import json

import pytest

from reliability.jsontypes import JsonValue, as_array, as_number, as_object, as_str


def test_narrowing_accepts_the_right_shapes_and_names_the_field_otherwise() -> None:
    body: JsonValue = json.loads('{"name": "api", "toxics": [], "port": 8474, "up": true}')
    obj = as_object(body, "proxy")
    assert as_str(obj["name"], "proxy.name") == "api"
    assert as_array(obj["toxics"], "proxy.toxics") == []
    assert as_number(obj["port"], "proxy.port") == 8474.0
    with pytest.raises(ValueError, match=r"^proxy.up: expected a number, got bool$"):
        as_number(obj["up"], "proxy.up")
    with pytest.raises(ValueError, match=r"^proxy: expected an array, got dict$"):
        as_array(body, "proxy")
    with pytest.raises(ValueError, match=r"^x: expected an object, got list$"):
        as_object([], "x")
    with pytest.raises(ValueError, match=r"^x: expected a string, got NoneType$"):
        as_str(None, "x")
