"""Stage 2, learn: per-node energies from a tree's features.

``data`` (IrEne datasets), ``regressors`` (ML level, per primitive type), ``aggregate`` (module
and model level), ``profile`` (a trained predictor for one device, saved as data), ``evaluate``
(leave-one-model-out cross-validation).
"""
