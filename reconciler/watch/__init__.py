"""Continuous reconciliation (`reconciler watch`): the loop and what it reports through.

    loop.py      one run every interval: plan, report, apply under the state lock
    drift.py     what moved since the last apply: drift (live) and pending (manifests)
    policy.py    what auto-apply may run now (prevent_destroy, =changes, backoff)
    backoff.py   per-resource retry delays
    eventlog.py  one line per event, text or JSON
    metrics.py   Prometheus /metrics and /healthz
    notify.py    webhook posts on drift and failed applies
"""
