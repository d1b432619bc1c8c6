"""What config/ reads of a resource kind: the declarations, never its API calls.

providers/contract.Kind satisfies this structurally; config sits below providers, so it is
written against this Protocol and the engine hands the kinds in (dependency inversion:
validation, local-file rules and sensitivity need a kind's schema, names and file fields,
not the HTTP code behind them).
"""
from __future__ import annotations

from typing import AbstractSet, Any, Mapping, Protocol

from reconciler.config.model import Resource
from reconciler.errors import Problem


class DeclaredKind(Protocol):
    name: str
    schema: str | dict[str, Any] | None
    sensitive: AbstractSet[str]
    outputs: AbstractSet[str]
    deletion_policies: tuple[str, ...]
    local_files: Mapping[str, str]

    def check_offline(self, resources: list[Resource]) -> list[Problem]: ...
