"""validate, plan, apply, destroy, show, drift, graph."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import click

from reconciler.cli import common, plan_out
from reconciler.cli.common import (
    fingerprint,
    guarded,
    invoked_flags,
    open_store,
    parse_duration,
    render,
    sandbox,
    sandbox_option,
    target_options,
    workspace,
)
from reconciler.cli.policy_opt import (
    add_policy_files,
    current_policy_files,
    override_options,
    override_record,
    policy_options,
)
from reconciler.cli.root import Globals, main
from reconciler.cli.variables_opt import inputs_of, variable_options
from reconciler.engine import graph as graphmod
from reconciler.engine.planner import PlanOptions
from reconciler.errors import LockError, PlanError, PolicyDenied
from reconciler.plan.model import Plan

if TYPE_CHECKING:
    from reconciler.config.model import Manifest
    from reconciler.engine.planner import PlanResult
    from reconciler.engine.runner import Workspace
    from reconciler.plan.signing import Key as PlanKey
    from reconciler.providers.contract import Kind
    from reconciler.state.base import StateDoc, StateStore

PLAN_SUFFIXES = (".yaml", ".yml")


def secrets_note(store: StateStore, state: StateDoc, had_secrets: bool) -> str | None:
    """Said once: by the apply that first writes a secret into a clear-text state."""
    if had_secrets or not any(r.secrets for r in state.resources.values()):
        return None
    from reconciler.state.crypto import secrets_encrypted

    if secrets_encrypted(os.environ):
        return None
    return (f"Note: the state at {store.location} holds secrets (access keys, passwords) in clear "
            "text, readable only by you (mode 0600 for files). Set RECONCILER_STATE_KEY to encrypt them.")


# -- commands -----------------------------------------------------------------------
@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@sandbox_option(hidden=True)
@policy_options
@variable_options
@click.pass_obj
@guarded
def validate(g: Globals, paths: tuple[str, ...]) -> None:
    """Check manifests: syntax, schemas, references, cycles. Makes no API call."""
    paths_l = list(paths) or ["."]
    ws = workspace(paths_l)
    click.echo(f"Valid: {counted(len(ws.manifest.resources), 'resource')} in "
               f"{counted(len(ws.manifest.files), 'file')}.")


def counted(n: int, noun: str) -> str:
    """'1 resource', '2 resources'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _invoked(g: Globals, paths: list[str], options: PlanOptions) -> PlanOptions:
    """The options with how this run was invoked, for the commands its messages offer."""
    return dataclasses.replace(options, flags=invoked_flags(g), paths=tuple(p for p in paths if p != "."))


def _make_plan(g: Globals, paths: list[str], options: PlanOptions, store: StateStore | None = None,
               saving: bool = True) -> tuple[Workspace, StateStore, StateDoc, PlanResult]:
    """`saving`: the plan may be saved (-o), so it carries the live objects' fingerprints."""
    from reconciler.cli.collector import paused

    with paused():  # the plan's objects live to the end of the run: not scanned as they are made
        return _planned(g, paths, options, store, saving)


def _planned(g: Globals, paths: list[str], options: PlanOptions, store: StateStore | None,
             saving: bool) -> tuple[Workspace, StateStore, StateDoc, PlanResult]:
    from reconciler.engine.runner import plan as run_plan

    ws = workspace(paths)
    store = store or open_store(g, paths, ws.manifest.backend)
    from reconciler.state.local import LocalStateStore

    local = store if isinstance(store, LocalStateStore) else None
    if local is not None:  # the file store shares recorded specs with the manifests' as it reads them
        local.specs = {r.address: r.spec for r in ws.manifest.resources}
    state = store.read()
    if local is not None:
        local.specs = None
    options = _invoked(g, paths, options)
    try:
        result = run_plan(ws, state, options, fingerprint=fingerprint if saving else None, shown_only=True,
                          elsewhere=getattr(store, "managed_elsewhere", None))
    except BaseException:
        ws.close()
        raise
    return ws, store, state, result


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), callback=plan_out.checked,
              help="Save the plan to apply later (a new file, or an earlier saved plan to replace).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for a terminal, json for scripts, markdown for a pull-request comment.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 no changes, 1 error, 2 changes.")
@click.option("--refresh-only", is_flag=True, help="Show drift only; propose no changes.")
@click.option("--destroy", is_flag=True, help="Plan the destruction of everything in the state.")
@target_options
@override_options
@policy_options
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def plan(g: Globals, paths: tuple[str, ...], out: str | None, fmt: str, detailed_exitcode: bool, refresh_only: bool,
         destroy: bool, targets: tuple[str, ...], excludes: tuple[str, ...], replace: tuple[str, ...],
         override_policies: tuple[str, ...], override_reason: str | None) -> None:
    """Show what apply would change, and why. Exit 3 when a policy denies the plan."""
    paths_l = list(paths) or ["."]
    options = PlanOptions(tuple(targets), tuple(excludes), tuple(replace), destroy, refresh_only)
    asked = override_record(override_policies, override_reason)
    with sandbox(g, paths_l):
        ws, store, state, result = _make_plan(g, paths_l, options, saving=out is not None)
        ws.close()
    overrides = _overrides(ws, result.plan, [asked] if asked else [])
    click.echo(render(result.plan, fmt, g.color), nl=False)
    if out:
        from reconciler.engine import pins
        from reconciler.plan import planfile, signing

        key = signing.key()
        salt = pins.new_salt()
        pinned_values, left_out = pins.inputs(result.steps, ws.kinds, ws.manifest.providers, salt, key,
                                              ws.manifest.files_read, ws.manifest.root)
        variables = _recorded_variables(ws.manifest, (lambda v: key.pin(salt, v)) if key.configured else None)
        left_out += sum(1 for v in variables.values() if isinstance(v, dict) and v.get("$unpinned"))
        # secrets_left_out: how many secret values a changed one of would go unnoticed
        pinned = {"salt": salt, "pins": pinned_values, "secrets_left_out": left_out}
        # paths relative to the working directory: CI applies on another runner's checkout
        planfile.save(result.plan, out, manifest_paths=[os.path.relpath(Path(p).resolve()) for p in paths_l],
                      inputs=pinned, key=key, options={"targets": list(targets), "excludes": list(excludes),
                               "replace": list(replace), "destroy": destroy,
                               "refresh_only": refresh_only, "sandbox": g.sandbox,
                               "variables": variables, "policy_files": current_policy_files()},
                      overrides=overrides, manifest_files=ws.manifest.file_digests, manifest_folder=os.getcwd())
        again = " ".join(["reconciler", *(["--sandbox"] if g.sandbox else []),
                          *(["--state", shlex.quote(g.state)] if g.state else []), "apply", shlex.quote(out)])
        click.echo(f"Saved the plan to {out}. Apply exactly this plan with: {again}", err=True)
        if left_out:
            click.echo(signing.unpinned_note(), err=True)
    if result.plan.denied:
        sys.exit(3)
    if detailed_exitcode and (result.plan.has_changes or result.plan.changes_outputs_only):
        sys.exit(2)


def _overrides(ws: Workspace, plan: Plan, asked: list[dict]) -> list[dict]:
    """Each override (from the command line or a saved plan) marks the failed results of
    the policies it names, with who and when; a name that is no policy is an error."""
    from reconciler.engine import expiry, policies
    from reconciler.engine.clock import stamp

    done = []
    for record in asked:
        full = {"who": expiry.who(), "at": stamp(ws.clock()), **record}
        unknown = policies.override(plan.policy_results, list(full["policies"]), full)
        if unknown:
            raise PlanError(f"--override-policy {unknown[0]}: no such policy (policies: "
                            f"{', '.join(sorted({r.name for r in plan.policy_results})) or 'none'})")
        done.append(full)
    return done


def _record_overrides(ws: Workspace, store: StateStore, state: StateDoc, plan: Plan, overrides: list[dict]) -> None:
    """The state's events keep who overrode which failed policy and why, before anything is applied."""
    from reconciler.engine import expiry

    used = [r for r in plan.policy_results if r.overridden is not None]
    if not used:
        return
    for record in overrides:
        failed = sorted({r.name for r in used if r.name in record["policies"]})
        if failed:
            expiry.add_event(state, ws.clock(), "policy_override", policies=failed, reason=record["reason"],
                             overridden_by=record["who"],
                             addresses=sorted({r.address for r in used if r.address and r.name in failed}))
    store.write(state)


def _recorded_variables(manifest: Manifest, pin: Callable[[Any], str] | None) -> dict:
    from reconciler.config.variables import record
    from reconciler.providers.http import SECRET_KEYS

    # declared sensitive, read by a provider block, or named like a secret: only a digest
    secret = set(manifest.sensitive_variables) | {n for n in manifest.variables if SECRET_KEYS.search(n)}
    return record(manifest.variables, secret, pin)


def _is_planfile(paths: list[str]) -> bool:
    return len(paths) == 1 and Path(paths[0]).is_file() and not paths[0].endswith(PLAN_SUFFIXES)


def _confirm(auto_approve: bool, what: str) -> None:
    if auto_approve:
        return
    if not sys.stdin.isatty():
        raise PlanError(f"{what} needs confirmation, and there is no terminal to ask on; "
                        "pass --auto-approve to proceed")
    if not click.confirm(f"Do you want to {what}?", default=False):
        click.echo("Cancelled: nothing was changed.")
        sys.exit(1)


def _moved_inputs(saved_inputs: dict, result: PlanResult, ws: Workspace, key: PlanKey) -> list[str]:
    """Every resolved value and local file against the pins the plan file holds."""
    from reconciler.engine import pins

    salt = saved_inputs.get("salt")
    if not isinstance(salt, str) or not isinstance(saved_inputs.get("pins"), dict):
        return ["the plan file pins no inputs (made by an older reconciler)"]
    fresh, _ = pins.inputs(result.steps, ws.kinds, ws.manifest.providers, salt, key, ws.manifest.files_read,
                           ws.manifest.root)
    return pins.differences(saved_inputs["pins"], fresh)


def _run_apply(g: Globals, paths: list[str], options: PlanOptions, auto_approve: bool, parallelism: int,
               lock_timeout: float, saved: Plan | None = None, verb: str = "apply",
               saved_inputs: dict | None = None, overrides: list[dict] | None = None,
               key: PlanKey | None = None, saved_files: dict[str, str] | None = None) -> None:
    from reconciler.cli.collector import paused
    from reconciler.engine.applier import Applier

    with paused():  # the manifests', the state's and the plan's objects: see cli/collector.py
        ws = workspace(paths)
    try:
        store = open_store(g, paths, ws.manifest.backend)
        if hasattr(store, "command"):
            store.command = verb
        with _state_lock(store, verb, lock_timeout):
            from reconciler.engine.runner import plan as run_plan

            with paused():
                state = store.read()
                result = run_plan(ws, state, _invoked(g, paths, options), fingerprint=fingerprint,
                                  elsewhere=getattr(store, "managed_elsewhere", None))
            if saved is not None:
                from reconciler.plan import planfile

                done = planfile.already_applied(saved, result.plan, state.serial)
                if done:
                    raise PlanError(f"{done}. Make a new plan to change more.")
                reasons = planfile.stale_reasons(
                    saved, manifest_digest=ws.manifest.digest, state_lineage=state.lineage,
                    state_serial=state.serial, fingerprints=result.plan.fingerprints,
                    saved_files=saved_files, fresh_files=ws.manifest.file_digests)
                reasons += planfile.same_actions(saved, result.plan) if not reasons else []
                assert key is not None  # a saved plan was verified under it
                reasons += _moved_inputs(saved_inputs or {}, result, ws, key)
                if reasons:
                    raise PlanError("the saved plan is stale and was not applied:\n  - " + "\n  - ".join(reasons)
                                    + "\nMake a new plan.")
            granted = _overrides(ws, result.plan, overrides or [])
            if saved is not None:  # what the reviewer saw denied stays denied without an override
                from reconciler.engine.policies import override

                for record in granted:
                    override(saved.policy_results, list(record["policies"]), record)
                result.plan.policy_results += [r for r in saved.denied
                                               if (r.name, r.address) not in
                                               {(f.name, f.address) for f in result.plan.policy_results}]
            if saved is None:
                _echo_plan(result.plan, g.color)
            if result.plan.denied:
                from reconciler.render.policies import verdict

                raise PolicyDenied(f"{verdict(result.plan)} Nothing was applied.")
            _drop_shown_changes(result.plan)
            _record_overrides(ws, store, state, result.plan, granted)
            if options.refresh_only:
                _record_refresh(store, state, result, ws.kinds, saved is not None or auto_approve)
                return
            if not result.plan.has_changes:
                Applier(result, ws.kinds, lambda k: ws.context(k), store, state).run()  # state sync only
                _record_outputs(ws, store, state, options)
                _record_deadlines(ws, store, state, result)
                return
            if saved is None:
                _confirm(auto_approve, "perform these actions" if verb == "apply" else "destroy these resources")
            started = time.monotonic()
            from reconciler.cli.progress import ApplyDisplay

            had_secrets = any(r.secrets for r in state.resources.values())
            display = ApplyDisplay(sum(1 for a in result.plan.actions if a.is_change), live=g.color, color=g.color)
            applier = Applier(result, ws.kinds, lambda k: ws.context(k), store, state, parallelism=parallelism,
                              on_event=display.event, on_progress=display.progress)
            try:
                applier.run()
            finally:
                display.close()
                _record_deadlines(ws, store, state, result)
            _record_outputs(ws, store, state, options)
            from reconciler.render.text import counts

            past = {"to add": "added", "to change": "changed", "to destroy": "destroyed", "to forget": "forgotten",
                    "to release": "released", "to orphan": "orphaned", "to import": "imported",
                    "moved": "moved"}
            done = ", ".join(f"{n} {past[words]}" for words, n in counts(result.plan))
            click.echo(f"\n{'Apply' if verb == 'apply' else 'Destroy'} complete! Resources: {done}. "
                       f"({time.monotonic() - started:.1f}s)")
            if state.outputs and verb == "apply":
                from reconciler.cli.output_cmd import table

                click.echo("\nOutputs:\n" + table(state.outputs), nl=False)
            note = secrets_note(store, applier.state, had_secrets)
            if note:
                click.echo(note, err=True)
    finally:
        ws.close()


def _echo_plan(plan: Plan, color: bool) -> None:
    """The text plan, printed a thousand lines at a time: never held whole (at 100,000
    actions the text and its lines were some 110 MiB at the top of an apply's memory)."""
    from itertools import islice

    from reconciler.config.terminal import escape_keeping_colors
    from reconciler.render.text import plan_lines

    lines = plan_lines(plan, color=color)
    while batch := list(islice(lines, 1000)):  # escaped as common.render does (colours pass)
        click.echo(escape_keeping_colors("".join(line + "\n" for line in batch)), nl=False)


def _drop_shown_changes(plan: Plan) -> None:
    """The field changes of the plan's actions are for showing and checking it: once that is
    done, an apply lets them go (the applier works from the steps' own diffs). 100,000 new
    datums' fields were some 85 MiB held through the whole apply."""
    for action in plan.actions:
        action.changes = []


@contextlib.contextmanager
def _state_lock(store: StateStore, verb: str, timeout: float) -> Iterator[None]:
    """The state lock; while --lock-timeout waits for another holder, one line says whose."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(store.lock(verb, timeout=0))
        except LockError as e:
            if timeout <= 0:
                raise
            held = str(e).split(" is locked: ", 1)[-1].split(". ", 1)[0]
            click.echo(f"Waiting up to {timeout:g}s for the state lock, {held} ...", err=True)
            stack.enter_context(store.lock(verb, timeout=timeout))
        yield


def _record_deadlines(ws: Workspace, store: StateStore, state: StateDoc, result: PlanResult) -> None:
    """expires: deadlines of objects just made; tombstones of expired ones (even after a failure)."""
    from reconciler.engine.runner import after_apply

    if after_apply(ws, state, result):
        store.write(state)


def _record_outputs(ws: Workspace, store: StateStore, state: StateDoc, options: PlanOptions) -> None:
    """Top-level outputs from what the state now holds, kept in the state."""
    if options.refresh_only:
        return
    from reconciler.engine import outputs

    if outputs.record(ws.manifest, ws.kinds, state, destroy=options.destroy):
        store.write(state)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", default=8, show_default=True, type=click.IntRange(1, 64),
              help="At most this many resources changed at once.")
@click.option("--lock-timeout", default="0s", callback=common.duration_option,
              help="Wait this long for the state lock (e.g. 30s).")
@click.option("--refresh-only", is_flag=True,
              help="Record the live values in the state (drift); change nothing in the services.")
@target_options
@override_options
@policy_options
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def apply(g: Globals, paths: tuple[str, ...], auto_approve: bool, parallelism: int, lock_timeout: str, refresh_only: bool,
          targets: tuple[str, ...], excludes: tuple[str, ...], replace: tuple[str, ...],
          override_policies: tuple[str, ...], override_reason: str | None) -> None:
    """Make the live services match the manifests (or apply a saved PLANFILE exactly).
    A plan a policy denies is not applied (exit 3) unless --override-policy NAME --reason TEXT."""
    paths_l = list(paths) or ["."]
    asked = override_record(override_policies, override_reason)
    if _is_planfile(paths_l):
        from reconciler.plan import planfile, signing

        key = signing.key()
        saved, meta = planfile.load(paths_l[0], key)
        opts = meta.get("options", {})
        options = PlanOptions(tuple(opts.get("targets", ())), tuple(opts.get("excludes", ())),
                              tuple(opts.get("replace", ())), bool(opts.get("destroy")),
                              bool(opts.get("refresh_only")))
        manifest_paths = _plan_paths(meta, paths_l[0])
        given = inputs_of(g)
        if given.var_args or given.var_files:
            raise PlanError("a saved plan carries the variable values it was made with; "
                            "make a new plan to change them")
        given.recorded = opts.get("variables") or {}
        salt = meta["inputs"].get("salt")
        if isinstance(salt, str):
            given.pin = lambda v: key.pin(salt, v)
        # the policies the plan was made under hold at apply time too (an organisation's file)
        add_policy_files(g, [str(f) for f in opts.get("policy_files") or []])
        with sandbox(g, manifest_paths):
            if asked:  # who and when now: the same record goes to the state and the plan file
                from reconciler.engine import expiry
                from reconciler.engine.clock import stamp

                asked = {"who": expiry.who(), "at": stamp(common.clock()), **asked}
            _run_apply(g, manifest_paths, options, True, parallelism, parse_duration(lock_timeout),
                       saved=saved, verb="destroy" if options.destroy else "apply", saved_inputs=meta["inputs"],
                       overrides=[*meta["overrides"], *([asked] if asked else [])], key=key,
                       saved_files=meta["manifest_files"])
        if asked:  # the plan file keeps the override it was applied with
            planfile.record_override(paths_l[0], asked, key)
        return
    options = PlanOptions(tuple(targets), tuple(excludes), tuple(replace), False, refresh_only)
    with sandbox(g, paths_l):
        _run_apply(g, paths_l, options, auto_approve, parallelism, parse_duration(lock_timeout),
                   overrides=[asked] if asked else [])


def _plan_paths(meta: dict, planfile_path: str) -> list[str]:
    """The manifests a saved plan was made from. Its paths are relative to the folder the
    plan was made in: here when that is this folder or another checkout of the same
    layout (CI); the plan's own folder when that exists on this machine and this one
    is elsewhere, said on stderr."""
    paths = list(meta["manifest_paths"])
    folder = meta.get("manifest_folder")
    if not isinstance(folder, str) or not Path(folder).is_dir():
        return paths
    if Path(folder).resolve() == Path.cwd().resolve():
        return paths
    moved = [str(Path(folder) / p) for p in paths]
    if not all(Path(p).exists() for p in moved):
        return paths
    here = all(Path(p).exists() for p in paths) and not any(Path(p).resolve() == Path.cwd().resolve()
                                                            for p in paths)
    if here:  # the same layout here (another checkout): the paths as written
        return paths
    shown = ", ".join(os.path.relpath(p) for p in moved)
    click.echo(f"Using the manifests the plan was made from: {shown} (the plan was made in {folder}, "
               f"not here; {planfile_path} names its paths from there).", err=True)
    return moved


def _record_refresh(store: StateStore, state: StateDoc, result: PlanResult, kinds: Mapping[str, Kind],
                    approved: bool) -> None:
    """apply --refresh-only: the live values become the state's; nothing in the services changes."""
    from reconciler.engine import drift as driftmod

    found = result.plan.drift
    if not found:
        click.echo("No drift: the state already matches the live objects; nothing to record.")
        return
    if not approved:
        click.echo(render(result.plan, "text", False), nl=False)
        _confirm(False, "record these live values in the state")
    skipped = driftmod.record(state, result.live, found, kinds)
    store.write(state)
    click.echo(f"Refresh-only apply complete! Recorded the live values of {len(found)} resource"
               f"{'s' if len(found) != 1 else ''} in the state; nothing in the services changed.")
    if skipped:
        click.echo("Kept the last applied value of: " + ", ".join(skipped), err=True)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation.")
@click.option("--parallelism", default=8, show_default=True, type=click.IntRange(1, 64),
              help="At most this many resources changed at once.")
@click.option("--lock-timeout", default="0s", callback=common.duration_option,
              help="Wait this long for the state lock (e.g. 30s).")
@target_options
@override_options
@policy_options
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def destroy(g: Globals, paths: tuple[str, ...], auto_approve: bool, parallelism: int, lock_timeout: str,
            targets: tuple[str, ...], excludes: tuple[str, ...], replace: tuple[str, ...],
            override_policies: tuple[str, ...], override_reason: str | None) -> None:
    """Destroy everything the state manages, in reverse dependency order."""
    if replace:
        raise PlanError("destroy --replace makes no sense: destroy replaces nothing "
                        "(use `apply --replace ADDR` to replace a resource)")
    paths_l = list(paths) or ["."]
    options = PlanOptions(tuple(targets), tuple(excludes), (), True, False)
    asked = override_record(override_policies, override_reason)
    with sandbox(g, paths_l):
        _run_apply(g, paths_l, options, auto_approve, parallelism, parse_duration(lock_timeout),
                   verb="destroy", overrides=[asked] if asked else [])


@main.command()
@click.argument("planfile", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for a terminal, json for scripts, markdown for a pull-request comment.")
@click.option("--split", "split_dir", type=click.Path(), metavar="DIR",
              help="Markdown only: write DIR/001.md, 002.md, ... each fitting one pull-request comment.")
@click.pass_obj
@guarded
def show(g: Globals, planfile: str, fmt: str, split_dir: str | None) -> None:
    """Render a saved plan again."""
    from reconciler.plan import planfile as pf
    from reconciler.plan.signing import unpinned_note

    saved, meta = pf.load(planfile)
    if split_dir:
        if fmt != "markdown":
            raise click.UsageError("--split needs --format markdown")
        from reconciler.render.markdown import write_pages

        written = write_pages(saved, Path(split_dir))
        click.echo(f"Wrote {len(written)} page{'s' if len(written) != 1 else ''} to {split_dir}: "
                   + ", ".join(p.name for p in written))
    else:
        click.echo(render(saved, fmt, g.color), nl=False)
    if meta["inputs"].get("secrets_left_out"):
        click.echo(unpinned_note(), err=True)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              show_default=True, help="text for a terminal, json for scripts, markdown for a pull-request comment.")
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def drift(g: Globals, paths: tuple[str, ...], fmt: str) -> None:
    """For scheduled jobs: what changed in the live services since the last apply (edits to
    the manifests are pending changes, not drift). Exit 0 none, 1 error, 2 drift."""
    paths_l = list(paths) or ["."]
    with sandbox(g, paths_l):
        ws, store, state, result = _make_plan(g, paths_l, PlanOptions(refresh_only=True), saving=False)
        ws.close()
    click.echo(render(result.plan, fmt, g.color), nl=False)
    if result.plan.has_changes:
        sys.exit(2)


@main.command(name="graph")
@click.argument("paths", nargs=-1, type=click.Path())
@variable_options
@click.pass_obj
@guarded
def graph_cmd(g: Globals, paths: tuple[str, ...]) -> None:
    """The dependency graph in Graphviz DOT."""
    ws = workspace(list(paths) or ["."])
    click.echo(graphmod.to_dot(graphmod.build(ws.manifest.resources)), nl=False)
