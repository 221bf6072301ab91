"""Stage 1, trace: a model and its inputs -> an :class:`~predictor.trace.tree.EnergyTree`.

``tree`` (the tree type), ``tracer`` (``build_tree``: the meta / fake-tensor trace), ``inputs``
(the forms a model's inputs take, shapes, position limits), ``ops`` (the op vocabulary and the
op-formula registry), ``formulas`` (what one call of an op costs), ``features`` (which op gets
which formula: the default registry), ``primitives`` (which modules are ML primitives),
``zoo`` (models built from their config classes). Registries are objects: each trace works on
its own copy. Importing this package imports no torch; its modules do.
"""
