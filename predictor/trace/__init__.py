"""Stage 1, trace: a model and its inputs -> an :class:`~predictor.trace.tree.EnergyTree`.

``tree`` (the tree type), ``tracer`` (the meta / fake-tensor trace), ``features`` (op -> FLOPs
and bytes formulas), ``zoo`` (models built from their config classes). Importing this package
imports no torch; its modules do.
"""
