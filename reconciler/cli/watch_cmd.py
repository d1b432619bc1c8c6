"""`reconciler watch`: re-read the manifests every interval, report drift and pending
changes, and with --auto-apply keep the live services converged. Runs as a service:
metrics, health, webhook notices, and a clean stop on SIGTERM/SIGINT."""
from __future__ import annotations

import os
import re
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable

import click

from reconciler.cli import common
from reconciler.cli.common import (
    fail,
    guarded,
    open_store,
    parse_duration,
    providers,
    sandbox,
    sandbox_option,
)
from reconciler.cli.policy_opt import current_policy_files, policy_options
from reconciler.cli.root import Globals, main
from reconciler.cli.variables_opt import current_inputs, variable_options

if TYPE_CHECKING:
    from reconciler.watch.eventlog import EventLog
    from reconciler.watch.loop import RunOutcome, Watch

HARD_STOP = 8.0  # seconds after a stop signal: a run still going is abandoned (exit 0 under 10 s)


def parse_jitter(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text or "")
    value = (float(m.group(1)) / (100 if m.group(2) else 1)) if m else -1.0
    if not 0 <= value < 1:
        raise click.BadParameter(f"{text!r}: expected a share of the interval below 100%, like 10%")
    return value


def _auto_apply(value: str | None) -> str | None:
    if value not in (None, "all", "changes"):
        raise click.BadParameter(f"{value!r} is not all or changes (put PATHS before --auto-apply, "
                                 "or write --auto-apply=all)", param_hint="--auto-apply")
    return value


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--interval", default="60s", show_default=True, callback=common.duration_option,
              help="Time between runs: 500ms, 30s, 5m.")
@click.option("--auto-apply", "auto_apply", is_flag=False, flag_value="all", default=None,
              metavar="[=all|=changes]", callback=lambda ctx, param, value: _auto_apply(value),
              help="Apply what the plan says (under the state lock, never destroying a prevent_destroy "
                   "resource). =changes: in-place updates only (it heals drift): never a create, delete or replace. "
                   "Put PATHS before it, or write --auto-apply=all.")
@click.option("--jitter", default="0%", show_default=True, help="Spread each interval by up to this share (10%).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus /metrics and /healthz on this port (0: a free port, logged).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address the metrics server binds (0.0.0.0 in a container, for probes and Prometheus).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="One line per event: text, or JSON for log collectors.")
@click.option("--notify", "notify_url", metavar="URL", envvar="RECONCILER_NOTIFY_URL", show_envvar=True,
              help="POST a JSON notice (with a Slack-compatible `text`) when drift appears or clears "
                   "and when an apply fails.")
@click.option("--parallelism", default=8, show_default=True, type=click.IntRange(1, 64),
              help="At most this many resources changed at once (--auto-apply).")
@click.option("--once", is_flag=True, help="One run, then exit (cron jobs, CI schedules): 0 nothing drifted, "
              "1 an error or a failed apply, 2 drift found, 3 denied by policy.")
@policy_options
@sandbox_option
@variable_options
@click.pass_obj
@guarded
def watch(g: Globals, paths: tuple[str, ...], interval: str, auto_apply: str | None, jitter: str,
          metrics_port: int | None, metrics_host: str, log_format: str, notify_url: str | None,
          parallelism: int, once: bool) -> None:
    """Keep watching: every interval plan, report what moved, and with --auto-apply heal it
    (expiry and power schedules are carried out as their moments pass).
    Stops cleanly on SIGTERM or SIGINT (exit 0)."""
    from reconciler.config.cache import ManifestCache
    from reconciler.engine.runner import load_workspace
    from reconciler.watch.eventlog import EventLog
    from reconciler.watch.loop import Watch, WatchConfig
    from reconciler.watch.metrics import Health, Metrics, MetricsServer
    from reconciler.watch.notify import Notifier

    if notify_url is not None:
        _check_notify(notify_url)
    seconds = parse_duration(interval)
    if seconds <= 0:
        raise click.BadParameter(f"{interval!r}: the interval must be longer than 0", param_hint="--interval")
    config = WatchConfig(interval=seconds, jitter=parse_jitter(jitter), auto_apply=auto_apply,
                         parallelism=parallelism, once=once)
    paths_l = list(paths) or ["."]
    log = EventLog(log_format)
    with sandbox(g, paths_l):
        kinds = providers()
        inputs = current_inputs()  # --var / --var-file, read again on every run's load
        policy_files = current_policy_files()
        cache = ManifestCache.beside(paths_l, memory=True)  # an idle run neither parses nor validates
        load = lambda: load_workspace(paths_l, kinds, progress=lambda m: log.emit("progress", m),  # noqa: E731
                                      inputs=inputs, policy_files=policy_files, clock=lambda: common.clock(),
                                      cache=cache)
        first = load()  # bad manifests at start: one line each, exit 1, no API call
        first.close()
        metrics, health = Metrics(), Health(seconds)
        notifier = Notifier(notify_url, on_error=lambda m: log.emit("notify_failed", m, level="warning")) \
            if notify_url else None
        w = Watch(config, load, lambda ws: open_store(g, paths_l, ws.manifest.backend), log,
                  metrics=metrics, health=health, notifier=notifier)
        server = _metrics_server(MetricsServer, metrics, health, metrics_port, metrics_host) \
            if metrics_port is not None else None
        previous = _stop_on_signals(w, log)
        store = open_store(g, paths_l, first.manifest.backend)
        log.emit("start", f"watching {' '.join(paths_l)} every {seconds:g}s"
                          f"{f' ±{config.jitter:.0%}' if config.jitter else ''}; "
                          f"{'auto-apply: ' + auto_apply if auto_apply else 'report only'}; state {store.location}"
                          + (f"; metrics on http://{metrics_host}:{server.port}/metrics" if server else ""),
                 interval_seconds=seconds, auto_apply=auto_apply, state=store.location,
                 metrics_port=server.port if server else None)
        code = 0
        try:
            if once:
                code = once_exit_code(w.run_once())
            else:
                w.run_forever()
        finally:
            for signum, handler in previous.items():  # a --once run inside a longer process leaves them as found
                signal.signal(signum, handler)
            if notifier:
                notifier.close()
            if server:
                server.stop()
        if once:
            sys.exit(code)
        log.emit("stopped", "stopped cleanly: the state is written and the lock is free")


def once_exit_code(outcome: RunOutcome) -> int:
    """`watch --once` exits as `drift` does (0 none, 1 error, 2 drift), and 3 when denied."""
    if outcome.result == "denied":
        return 3
    if outcome.result in ("error", "failed", "interrupted"):
        return 1
    return 2 if outcome.drift else 0


def _stop_on_signals(w: Watch, log: EventLog) -> dict:
    def abandon() -> None:
        log.emit("abandoned", f"the run did not finish within {HARD_STOP:g}s of the stop signal; exiting. "
                              "The state is as last written (creates in flight are journaled) and the lock "
                              "goes with this process; the next run completes the work.", level="warning")
        os._exit(0)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if w.stopping:
            return
        log.emit("stopping", f"{signal.Signals(signum).name} received: finishing the run in progress "
                             f"(at most {HARD_STOP:g}s)")
        w.stop()
        timer = threading.Timer(HARD_STOP, abandon)
        timer.daemon = True
        timer.start()

    return {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}


def _check_notify(url: str) -> None:
    """http(s) only, with a host; the URL is not echoed (a webhook's path is its secret)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:  # a port that is not a number
        ok = False
    if not ok or any(ch.isspace() or ord(ch) < 32 for ch in url):
        fail("--notify: expected an http:// or https:// URL with a host (a webhook)")


def _metrics_server(make: Callable[..., Any], metrics: Any, health: Any, port: int, host: str) -> Any:
    """The metrics server, or one line when the address is busy or not one of this machine's."""
    try:
        return make(metrics, health, port, host).start()
    except (OSError, OverflowError, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or e.__class__.__name__
        fail(f"--metrics-host {host} --metrics-port {port}: cannot serve metrics there ({reason})")
