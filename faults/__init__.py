"""Fault scenarios of issue 5: a runner, the scenarios and a checker that reads ``placements`` from offset 0.

``python -m faults.runner [--quick]`` runs scenarios 1, 6, 8 and 9 against one embedded tansu broker on
loopback, with real ``carbon-router worker`` child processes, and prints what was sent, acknowledged,
placed, lost and duplicated. See ``faults/README.md``.
"""
