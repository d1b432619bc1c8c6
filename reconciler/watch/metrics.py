"""Prometheus metrics of a watch (prometheus-client), and the small HTTP server that
serves them at /metrics beside /healthz.

    reconciler_runs_total{result}              ok | failed | error | interrupted
    reconciler_last_run_timestamp_seconds      end of the last finished run (Unix time)
    reconciler_run_duration_seconds            histogram of run durations
    reconciler_drifted_resources               found by the last run
    reconciler_pending_changes                 found by the last run
    reconciler_failed_resources                resources whose last apply failed (backing off)
    reconciler_api_requests_total{api}         every request sent, retries and auth included

/healthz answers 200 while the last run finished within 3 intervals, else 503: a
liveness probe restarts a stuck watch. Not stuck either: a watch waiting its turn for
the state lock, and a long run (a VM provisioning for 20 minutes) that still talks to
the APIs, i.e. sent a request within 3 intervals.
Each watch has its own registry, so two in one process (tests) do not collide.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

RESULTS = ("ok", "failed", "error", "interrupted")
APIS = ("valdi", "valohai", "codeocean")


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.runs = Counter("reconciler_runs", "Watch runs by result.", ["result"], registry=r)
        self.last_run = Gauge("reconciler_last_run_timestamp_seconds", "When the last run finished.", registry=r)
        self.duration = Histogram("reconciler_run_duration_seconds", "How long runs take.", registry=r,
                                  buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
        self.drifted = Gauge("reconciler_drifted_resources", "Resources changed outside reconciler.", registry=r)
        self.pending = Gauge("reconciler_pending_changes", "Resources whose manifest moved since the last apply.",
                             registry=r)
        self.failed = Gauge("reconciler_failed_resources", "Resources whose last apply failed.", registry=r)
        self.api_requests = Counter("reconciler_api_requests", "Requests sent to each API.", ["api"], registry=r)
        for result in RESULTS:  # present at 0 from the start, so rate() works at once
            self.runs.labels(result)
        for api in APIS:
            self.api_requests.labels(api)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class Health:
    """Alive while runs keep finishing (or a long one keeps talking to the APIs)."""

    def __init__(self, interval: float, clock=time.monotonic):
        self.interval = interval
        self.clock = clock
        self.since = clock()  # start, then the end of the last finished run
        self.waiting_for_lock = False
        self.running = False
        self.last_request = 0.0

    def run_started(self) -> None:
        self.running = True

    def request_sent(self) -> None:
        self.last_request = self.clock()

    def run_finished(self) -> None:
        self.since = self.clock()
        self.running = False

    def check(self) -> tuple[bool, dict]:
        now, limit = self.clock(), 3 * self.interval
        age = now - self.since
        busy = self.running and now - self.last_request <= limit
        ok = self.waiting_for_lock or age <= limit or busy
        return ok, {"status": "ok" if ok else "stale", "seconds_since_last_run": round(age, 3),
                    "interval_seconds": self.interval, "waiting_for_lock": self.waiting_for_lock,
                    "run_in_progress": self.running}


class MetricsServer:
    def __init__(self, metrics: Metrics, health: Health, port: int, host: str = "0.0.0.0"):
        handler = _handler(metrics, health)
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)

    def start(self) -> "MetricsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(metrics: Metrics, health: Health):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._send(200, metrics.text(), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok, body = health.check()
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - scrapes are not news
            pass
    return Handler
