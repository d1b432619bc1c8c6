"""Decoding a page of 5,000 listed datums (emulator shape) three ways, keeping the fields the
kinds read: the generic reading (json + dropping fields), msgspec Structs (what the Valohai
client uses), and orjson + a slots class (if orjson is installed). Time per page and the
peak memory of decoding one page (tracemalloc).

Run: python tests/benchmarks/bench_decode.py
"""
from __future__ import annotations

import json
import statistics
import time
import tracemalloc

from reconciler.providers.valohai.client import DATUM_FIELDS, decode_datum_page


def page(n: int = 5000) -> bytes:
    items = [{"id": f"01a241ee-92a2-70b2-ac90-{i:012}", "name": f"{i:06}.csv", "size": 2,
              "ctime": "2026-12-04T16:41:23.873984Z", "mtime": "2026-12-04T16:41:24.650767Z",
              "file_ctime": "2026-12-04T16:41:23.873984Z", "file_mtime": "2026-12-04T16:41:23.873984Z",
              "uri": f"s3://sandbox-bucket/bench/{i:06}.csv", "sha256": "9a271f2a" * 8, "md5": "89731692" * 4,
              "output_execution": None, "tags": ["bench"], "metadata": {"index": i, "version": 1},
              "project": {"id": "0189f0e2-5b1a-7c3d-9e4f-a1b2c3d4e5f6", "name": "sandbox"},
              "store": {"id": "0189f0e2-6c2b-7d4e-8f50-b2c3d4e5f607", "name": "sandbox-store"},
              "purged": False, "deleted": False, "url": f"http://127.0.0.1:8765/api/v0/data/{i}/"}
             for i in range(n)]
    return json.dumps({"count": n, "next": None, "previous": None, "results": items}).encode()


def generic(raw: bytes) -> list[dict]:
    body = json.loads(raw)
    return [{k: v for k, v in item.items() if k in DATUM_FIELDS} for item in body["results"]]


def with_msgspec(raw: bytes) -> list[dict]:
    return decode_datum_page(raw).results


def with_orjson():
    import orjson

    class Datum:
        __slots__ = tuple(sorted(DATUM_FIELDS))

    def decode(raw: bytes) -> list:
        out = []
        for item in orjson.loads(raw)["results"]:
            d = Datum()
            for k in Datum.__slots__:
                if k in item:
                    setattr(d, k, item[k])
            out.append(d)
        return out
    return decode


def measure(label: str, fn, raw: bytes) -> None:
    times = []
    for _ in range(7):
        t = time.perf_counter()
        fn(raw)
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    kept = fn(raw)
    _, peak = tracemalloc.get_traced_memory()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    print(f"| {label} | {statistics.median(times) * 1000:.1f} ms | {peak / 2**20:.1f} MiB | {current / 2**20:.1f} MiB |")


if __name__ == "__main__":
    raw = page()
    print(f"page of 5,000 datums: {len(raw) / 2**20:.1f} MiB of JSON")
    print("| decoding | median time | peak while decoding | kept |")
    print("|---|---|---|---|")
    measure("json + drop fields (before)", generic, raw)
    measure("msgspec Structs -> dicts (now)", with_msgspec, raw)
    try:
        measure("orjson + slots class", with_orjson(), raw)
    except ImportError:
        print("| orjson + slots class | (orjson not installed) | | |")
