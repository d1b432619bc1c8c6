"""Nothing from a manifest, an API or an error reaches a terminal or a log as a control
sequence: C0/C1 controls (ESC ]0;...BEL sets a window title) and bidi overrides are shown
as visible escapes, in apply progress, error lines, the watch log and plans."""
from __future__ import annotations

import io
import json
import re
import textwrap

from conftest import Infra

from reconciler.cli.progress import ApplyDisplay
from reconciler.config.terminal import escape
from reconciler.plan.model import Action, ActionType
from reconciler.watch.eventlog import EventLog

HOSTILE = "x\x1b]0;PWNED\x07y\x00z\u202etxt.exe\x9b2J"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def test_escape_makes_every_control_and_bidi_override_visible():
    assert escape(HOSTILE) == "x\\x1b]0;PWNED\\x07y\\x00z\\u202etxt.exe\\x9b2J"
    assert escape("two\nlines\tok") == "two\nlines\tok"
    assert escape("two\nlines", one_line=True) == "two\\x0alines"


def test_progress_failure_details_and_the_watch_log_escape_hostile_text():
    out: list[str] = []
    display = ApplyDisplay(1, live=False, echo=out.append)
    action = Action("valdi.volume.v", "valdi.volume", ActionType.CREATE, [])
    display.event(action, "start", None, None)
    display.progress(action.address, f"uploading to {HOSTILE}")
    display.event(action, "failed", 1.0, f"the API said {HOSTILE}")
    assert out and not any(RAW.search(line) for line in out), out
    for fmt in ("text", "json"):
        buffer = io.StringIO()
        EventLog(fmt, buffer).emit("drift", f"name {HOSTILE}", address="valdi.volume.v", detail=HOSTILE)
        assert "PWNED" in buffer.getvalue() and not RAW.search(buffer.getvalue().rstrip("\n")), fmt
        if fmt == "json":
            assert HOSTILE in json.loads(buffer.getvalue())["message"]  # a log reader still gets the value


def test_an_apply_with_a_hostile_bucket_name_prints_no_control_sequence(tmp_path, sandbox_env):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.txt").write_text("hello")
    (tmp_path / "m" / "main.yaml").write_text(textwrap.dedent('''
        resources:
          - kind: valdi.volume
            name: v
            spec:
              bucket_name: "b\\e]0;PWNED\\ac\\u202Etxt"
              files: [{path: a.txt, source: a.txt}]
        '''))
    infra = Infra(tmp_path / "m", "main.yaml")
    for run in (infra.plan, infra.apply):
        code, out = run()
        assert code == 0 and "PWNED" in out, out
        assert not RAW.search(out.replace("\n", "").replace("\t", "")), repr(out)


def test_a_pull_request_comment_shows_bidi_overrides_and_controls_as_text():
    from reconciler.render.values import escape as markdown_escape
    shown = markdown_escape(HOSTILE)
    assert not RAW.search(shown) and "u202e" in shown and "PWNED" in shown


def test_every_plan_format_printed_has_no_control_sequence_even_in_a_live_field_name():
    """A live property named with ESC or U+202E (set in a console) reaches drift as a path."""
    from reconciler.cli.common import render
    from reconciler.plan.model import Drift, FieldChange, Plan

    plan = Plan(actions=[], drift=[Drift("valohai.datum.d", "valohai.datum", "id-1", "d",
                                         changes=[FieldChange(f"properties.{HOSTILE}", "a", HOSTILE, False, False)])])
    for fmt in ("text", "json", "markdown"):
        for color in (False, True):
            out = render(plan, fmt, color)
            assert "PWNED" in out and not RAW.search(re.sub(r"\x1b\[[0-9;]*m", "", out).replace("\n", "")), (fmt, out)
    json.loads(render(plan, "json", False))  # still JSON
