"""`--policy-file FILE` (repeatable, plus RECONCILER_POLICY_FILE) on the commands that
plan, and `--override-policy NAME --reason TEXT` on those that may apply a denied plan.

Like --var, the files are kept on the command's Globals (ctx.obj) and read by
`workspace()` when the manifests load."""
from __future__ import annotations

import os
from typing import Any, Callable, TypeVar

import click

from reconciler.config.policies import ENV, files_from

FC = TypeVar("FC", bound=Callable[..., Any])  # a click command function


def add_policy_files(g: Any, files: list[str] | tuple[str, ...]) -> None:  # a Globals
    g.policy_files = [*getattr(g, "policy_files", []), *files]


def _store(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> None:
    if value and ctx.obj is not None:
        add_policy_files(ctx.obj, value)


def current_policy_files() -> list[str]:
    """This run's policy files: RECONCILER_POLICY_FILE's, then each --policy-file."""
    ctx = click.get_current_context(silent=True)
    g = ctx.obj if ctx is not None else None
    return files_from(getattr(g, "policy_files", []), os.environ)


def policy_options(fn: FC) -> FC:
    return click.option("--policy-file", "policy_files", multiple=True, metavar="FILE", expose_value=False,
                        callback=_store, type=click.Path(),
                        help=f"Policies from this YAML file (policies: ...), beside the manifests' own "
                             f"(repeatable; also {ENV}).")(fn)


def _store_overrides(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    if value and ctx.obj is not None:
        ctx.obj.override_policies = list(value)
    return value


def unknown_override(g: Any, policy_names: set[str]) -> str | None:  # a Globals
    """The error for the first --override-policy NAME that names none of the policies
    (checked as the manifests load, before any API call: a typo never costs a plan)."""
    unknown = [n for n in getattr(g, "override_policies", []) if n not in policy_names]
    if not unknown:
        return None
    return (f"--override-policy {unknown[0]}: no such policy (policies: "
            f"{', '.join(sorted(policy_names)) or 'none'})")


def override_options(fn: FC) -> FC:
    fn = click.option("--override-policy", "override_policies", multiple=True, metavar="NAME",
                      callback=_store_overrides,
                      help="Apply although this deny policy fails (repeatable; needs --reason). "
                           "Who, which and why are recorded in the state.")(fn)
    fn = click.option("--reason", "override_reason", metavar="TEXT",
                      help="Why the policies named by --override-policy are overridden.")(fn)
    return fn


def override_record(names: tuple[str, ...], reason: str | None) -> dict | None:
    """{policies, reason} for the overrides given, or None; a name without a reason is a usage error."""
    if not names:
        if reason:
            raise click.UsageError("--reason goes with --override-policy NAME")
        return None
    if not reason or not reason.strip():
        raise click.UsageError("--override-policy needs --reason TEXT: the state records why")
    return {"policies": list(dict.fromkeys(names)), "reason": reason.strip()}
