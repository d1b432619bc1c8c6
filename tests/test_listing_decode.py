"""Listings decoded straight into the fields the kinds read (providers/valohai/client.py):
the same values the generic JSON reading gives for those fields, whatever their shape
(tags as objects, metadata nested, fields missing), and anything that is not a page is
left to the generic reading."""
from __future__ import annotations

import json
import random

import pytest

from reconciler.providers.valohai.client import DATUM_FIELDS, decode_datum_page

SHAPES = {
    "tags": [["a", "b"], [{"name": "a"}, {"name": "b", "color": "red"}], [], None, "x"],
    "metadata": [{}, {"a": 1, "b": {"c": [1, 2.5, None]}}, None, [1, 2]],
    "store": [{"id": "s1", "name": "store"}, "s1", None, {"id": "s1", "name": "n", "extra": {"deep": True}}],
    "size": [0, 12, 2 ** 60, None, 1.5],
    "purged": [True, False, None],
    "name": ["x.csv", "", None],
}


def datum(rng: random.Random) -> dict:
    item = {"id": f"id-{rng.random()}", "uri": f"s3://b/{rng.random()}", "sha256": "ab" * 32,
            "ctime": "2026-01-01T00:00:00Z", "project": {"id": "p", "name": "p"}, "output_execution": None,
            "md5": "x", "url": "http://x/"}
    for key, options in SHAPES.items():
        if rng.random() < 0.85:
            item[key] = rng.choice(options)
    if rng.random() < 0.1:
        del item["uri"]
    return item


@pytest.mark.parametrize("seed", range(5))
def test_a_page_decodes_to_the_kept_fields_as_the_generic_reading_does(seed):
    rng = random.Random(seed)
    items = [datum(rng) for _ in range(50)]
    raw = json.dumps({"count": 50, "next": None, "previous": None, "results": items}).encode()
    page = decode_datum_page(raw)
    assert page.count == 50 and page.next is None
    assert page.results == [{k: v for k, v in item.items() if k in DATUM_FIELDS} for item in items]


@pytest.mark.parametrize("body", [b"[]", b'{"detail": "x"}', b'{"results": [1, 2]}', b'{"results": {}}', b"nope"])
def test_what_is_not_a_page_of_objects_is_left_to_the_generic_reading(body):
    with pytest.raises(ValueError):
        decode_datum_page(body)
