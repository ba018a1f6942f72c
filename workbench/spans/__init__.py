"""Spans, the unit every stage speaks: Label Studio regions <-> character spans checked against their text
(`offsets`, the offset firewall), and spans -> tokens split at every span edge with IOB2 tags (`alignment`).
Pure functions, no I/O."""
