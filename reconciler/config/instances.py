"""for_each and count: which instances a resource block makes, and what `${each.key}`,
`${each.value}` and `${count.index}` read in each. Evaluated at load, so the engine sees
ordinary resources addressed `<kind>.<name>[<key>]`.

Rules: for_each takes a list (each.key = each.value; strings or numbers) or a mapping
(each.key / each.value; values may be objects), literal or from variables; count takes a
whole number >= 0. Neither may use resource references (instances must be known before
any API call) nor sensitive variables (keys are shown in addresses). Keys are unique and
valid address parts; at most MAX_INSTANCES per block.
"""
from __future__ import annotations

from typing import Callable, Mapping

from reconciler.config import expressions
from reconciler.config.model import Position
from reconciler.config.variables import describe_type
from reconciler.config.walk import copy_plain
from reconciler.config.yamlread import locate

MAX_INSTANCES = 10_000  # per for_each / count block


def _line_col(pos: Position) -> tuple[int, int]:
    return (pos.line, pos.column)


def instances(item: dict, address: str, item_pos: Position, positions: Mapping[str, Position],
              scope: Callable[[str], expressions.Scope],
              problem: Callable[[Position, str, str], None]) -> list[tuple[str, dict]] | None:
    """[(key, what ${each.*} / ${count.index} read)] for a for_each / count block;
    None for an ordinary resource. Problems are reported through problem(pos, path, message)
    and give no instance. scope(field) is what for_each / count is evaluated in."""
    has_each, has_count = "for_each" in item, "count" in item
    if not has_each and not has_count:
        return None
    if has_each and has_count:
        later = max(("for_each", "count"), key=lambda k: _line_col(positions.get(k, item_pos)))
        problem(positions.get(later, item_pos), f"{address}.{later}",
                     "for_each and count cannot be used together: use one of them")
        return []
    field = "for_each" if has_each else "count"
    pos = positions.get(field, item_pos)
    field_scope = scope(field)
    failed: list[str] = []

    def report(path: str, message: str) -> None:
        failed.append(message)
        problem(locate(positions, f"{field}{'.' + path if path and not path.startswith('[') else path}")
                     if path else pos, f"{address}.{field}", message)

    value = expressions.walk(copy_plain(item[field]), field_scope, report)
    if failed:
        return []
    if field_scope.sensitive_paths:
        problem(pos, f"{address}.{field}", f"{field} cannot use a sensitive variable: its keys "
                     "become addresses, which plans show")
        return []
    if has_count:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            shown = "" if isinstance(value, (dict, list)) or value is None else f" {value!r}"
            problem(pos, f"{address}.count", "count must be a whole number, 0 or more; got "
                         f"{describe_type(value)}{shown}")
            return []
        if value > MAX_INSTANCES:
            problem(pos, f"{address}.count", f"count is {value:,}; the limit is {MAX_INSTANCES:,}")
            return []
        return [(str(i), {"count.index": i}) for i in range(value)]
    if isinstance(value, list):
        pairs = []
        for i, element in enumerate(value):
            if isinstance(element, bool) or not isinstance(element, (str, int)):
                problem(locate(positions, f"for_each[{i}]"), f"{address}.for_each[{i}]",
                             f"a for_each list holds strings (or numbers) that become instance keys, "
                             f"not {describe_type(element)}; use a mapping for other values")
                return []
            pairs.append((str(element), element, f"for_each[{i}]"))
    elif isinstance(value, dict):
        pairs = [(str(k), v, f"for_each.{k}") for k, v in value.items()]
    else:
        shown = "" if value is None else f" {value[:40]!r}" if isinstance(value, str) else f" {value}"
        problem(pos, f"{address}.for_each", "for_each must be a list or a mapping, got "
                     f"{describe_type(value)}{shown}")
        return []
    if len(pairs) > MAX_INSTANCES:
        problem(pos, f"{address}.for_each", f"for_each has {len(pairs):,} keys; the limit is "
                     f"{MAX_INSTANCES:,}")
        return []
    out: list[tuple[str, dict]] = []
    first: dict[str, int] = {}
    for key, element, where in pairs:
        at = locate(positions, where) if where in positions else pos
        if not expressions.INSTANCE_KEY.fullmatch(key):
            problem(at, f"{address}.for_each", f"{key[:40]!r} is not a valid instance key (letters, "
                         "digits, '_', '-' and '.', at most 128; it becomes part of the address "
                         f"{address}[KEY])")
            return []
        if key in first:
            problem(at, f"{address}.for_each", f"duplicate key '{key}' (also item {first[key] + 1}):"
                         " each instance needs its own key")
            return []
        first[key] = len(first)
        out.append((key, {"each.key": key, "each.value": element}))
    return out
