"""Rows: a snapshot's tasks become dataset rows, every submitted span checked and kept exactly, with the figures
a release publishes about them.

Modules: `builder` (a task -> its row and its share of the figures, streamed, in workers on large snapshots),
`tasks` (reading one exported task: annotations, predictions, place, disputes, flags), `tally` (the shares summed
and decoded into the figures), `quality` (agreement between annotators, pre-annotation precision/recall).
"""
