"""What an apply shows while it runs.

On a terminal (and without NO_COLOR / --no-color): one live status line per resource being
worked on, with the time since it started (ticking, not the poll's), and "k of N done"
under them (rich's Live display); finished resources scroll above it as plain lines.
Without a terminal (CI logs) or with NO_COLOR: plain lines only, a waiting resource's
status when it changes and at most every 10 s while it does not.
"""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import click

from reconciler.config.terminal import shown
from reconciler.plan.model import Action
from reconciler.render.text import render_apply_line

if TYPE_CHECKING:
    from rich.text import Text

PLAIN_EVERY = 10.0  # seconds between repeated plain status lines of one resource


class ApplyDisplay:
    def __init__(self, total: int, *, live: bool, color: bool = False, console: Any = None,
                 echo: Callable[[str], None] = click.echo, clock: Callable[[], float] = time.monotonic):
        self.total, self.finished = total, 0
        self.color, self.echo, self.clock = color, echo, clock
        self.running: dict[str, dict[str, Any]] = {}  # address -> started, status, shown, shown_at
        self.lock = threading.Lock()
        self._live = None
        if live:
            from rich.console import Console
            from rich.live import Live

            self.console = console or Console()
            self._live = Live(self, console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    # -- the applier's callbacks (worker threads and the main thread) --------------------
    def event(self, action: Action, status: str, seconds: float | None, detail: str | None) -> None:
        line = render_apply_line(action, status, seconds, color=self.color)
        with self.lock:
            if status == "start":
                self.running[action.address] = {"started": self.clock(), "status": "", "shown": "", "shown_at": 0.0}
            else:
                self.running.pop(action.address, None)
                self.finished += 1
                line += f" ({self.finished} of {self.total} done)"
        if status == "failed" and detail:
            line += f"\n    {shown(detail)}"
        self._print(line)

    def progress(self, address: str, message: str) -> None:
        """A kind's status while it works (e.g. "VM trainer: provisioning"): it may hold a
        name built from a secret or a hostile control sequence, so it is made safe first."""
        message = shown(message, one_line=True)
        now = self.clock()
        with self.lock:
            r = self.running.setdefault(address, {"started": now, "status": "", "shown": "", "shown_at": 0.0})
            r["status"] = message
            due = r["shown"] != message or now - r["shown_at"] >= PLAIN_EVERY
            if self._live is None and due:
                r["shown"], r["shown_at"] = message, now
            else:
                due = False
            elapsed = now - r["started"]
        if due:
            self._print(f"{address}: {message} ({elapsed:.0f}s elapsed)")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- rendering ------------------------------------------------------------------------
    def lines(self) -> list[str]:
        """The live area: one line per running resource, then the count."""
        now = self.clock()
        with self.lock:
            rows = [f"  {address}: {r['status'] or 'working'}... ({now - r['started']:.0f}s)"
                    for address, r in self.running.items()]
            rows.append(f"{self.finished} of {self.total} done")
        return rows

    def __rich__(self) -> Text:
        from rich.text import Text

        return Text("\n".join(self.lines()))

    def _print(self, line: str) -> None:
        if self._live is not None:
            from rich.text import Text

            self.console.print(Text.from_ansi(line))
        else:
            self.echo(line)
