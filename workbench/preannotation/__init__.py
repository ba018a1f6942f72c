"""Pre-annotation: the spaCy pipeline's entities and confidence for every paragraph, kept in the pool.

Modules: `annotate` (the stage: paragraphs through the pipeline, here in forked workers or on a Dask cluster,
into the pool), `entities` (a Doc's entities as spans of the label set: the one conversion both paths use),
`confidence` (how sure the model is of a paragraph), `pool` (the pool file and what `push --next N` sends),
`cluster` (the pipeline on a Dask cluster; imported only when one is set).
"""
