"""Reports people read: the report as tables (`tables`), its figures as data (`figures`), drawn (`plots`), and
laid out as one self-contained HTML page (`page`).

The parts are kept apart on purpose: `tables` and `figures` are pure (dicts, tasks and rows in; plain data out),
`plots` only draws a `figures.Chart` into PNG bytes, and `page` only turns tables and drawn charts into HTML.
Reading the snapshot and the manifests, and writing the page, is `workflow`'s. Nothing is imported here, so the
release writer can draw its label-distribution figure without loading the rest.
"""
