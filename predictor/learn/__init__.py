"""Stage 2, learn: per-node energies from a tree's features.

``data`` (IrEne datasets), ``regressors`` (ML level, per primitive type), ``flat`` (trees as
arrays), ``aggregate`` (module and model level), ``reconcile`` (children within their parent),
``profile`` (a trained predictor for one device, saved as data), ``profile_file`` (its file,
read without running code), ``evaluate`` (leave-one-model-out cross-validation).
"""
