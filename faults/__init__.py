"""Fault scenarios (faults/README.md): a runner, the scenarios, a checker that reads ``placements`` from
offset 0, a loopback fault proxy, and ``faults.external`` for running the same check against any cluster.

``python -m faults.runner [--quick] [--only N ...]`` runs the scenarios against an embedded tansu broker on
loopback, with real ``carbon-router worker`` child processes, and prints what was sent, acknowledged,
placed, lost and duplicated. See ``faults/README.md``.
"""
