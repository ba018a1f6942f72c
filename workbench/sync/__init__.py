"""Keeping Label Studio and the project in step: the corpus pushed as tasks, annotations pulled into snapshots.

Modules: `push` (paragraphs imported with predictions, never twice), `reconcile` (the corpus against the tasks:
new, edited, moved, renamed, retired; pure), `carry` (a plan carried into Label Studio, annotations re-anchored),
`interface` (the labeling project annotators see), `pull` (changed tasks merged into a new complete snapshot),
`snapshots` (the snapshot store release, review and report read), `status` (progress and what a push would do).
"""
