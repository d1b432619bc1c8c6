"""How long a 10,000-resource manifest takes to load, and why we read libyaml events.

    python tests/benchmarks/bench_manifest.py [N]

Prints: the raw parse with libyaml (CSafeLoader) and pure Python (SafeLoader), the
compose step the old loader used, and load_manifest end to end. Seconds are context on
a noisy machine; the ratios are the stable part.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

from reconciler.config import yamlread
from reconciler.config.manifest import load_manifest


def manifest(n: int) -> str:
    lines = ["resources:"]
    for i in range(n):
        lines.append(f"""  - kind: valdi.vm
    name: vm{i}
    spec:
      provider_id: a45088e0-1681-446e-9a3e-3ed9dfc3d57e
      details: {{flavor_id: 94d76997-44ec-4f1e-8291-231de42b6030, ssh_key_id: "${{valdi.ssh_key.deploy.id}}", vcpus: 4}}
      power: running
      tags: [a, b, "c-{i}"]
    lifecycle: {{prevent_destroy: true}}""")
    return "\n".join(lines) + "\n"


def timed(label: str, fn) -> float:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"  {label:<44} {seconds:7.2f} s")
    return seconds


def events(text: str, loader) -> None:
    parser = loader(text)
    while parser.get_event() is not None:
        pass
    parser.dispose()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    text = manifest(n)
    print(f"{n:,} resources, {len(text) / 1e6:.1f} MB")
    c_events = timed("events, libyaml (CSafeLoader)", lambda: events(text, yaml.CSafeLoader))
    py_events = timed("events, pure Python (SafeLoader)", lambda: events(text, yaml.SafeLoader))
    timed("compose, libyaml (what we no longer do)", lambda: yaml.compose(text, Loader=yaml.CSafeLoader))
    timed("read_documents (values + positions), libyaml", lambda: yamlread.read_documents(text, "m.yaml", []))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_text(text)
        total = timed("load_manifest end to end", lambda: load_manifest([path], {}))
        saved = yamlread.Loader
        yamlread.Loader = yaml.SafeLoader
        try:
            slow = timed("load_manifest with SafeLoader instead", lambda: load_manifest([path], {}))
        finally:
            yamlread.Loader = saved
    print(f"libyaml parses {py_events / c_events:.1f}x faster; load_manifest is {slow / total:.1f}x faster with it")


if __name__ == "__main__":
    main()
