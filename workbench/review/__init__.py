"""Review: the annotators' likely mistakes in the latest snapshot, sent back to Label Studio for a second look.

`find.review` builds the snapshot's rows (as a release would), finds the items of each reason (`analysis`; the
model reason through `kfold` when a trained model exists), leaves out the items whose task was submitted again
after it was flagged (`flags`), and keeps what it found beside the snapshot (`record`). `send.push_flags` marks
each suspect task in its data, clears the flags of tasks that have nothing open any more, and keeps one Data
Manager tab, "Needs review", that lists the flagged tasks. `record.release_summary` is what a release records:
the open items by reason among the rows it releases.

Modules: `analysis` (pure, pandas), `flags` (a task's flag as its data says it; pure), `kfold` (cross-validation
by article), `find` (the review of a snapshot), `send` (flags and the tab in Label Studio), `record` (what a
review keeps and a release counts).
"""
