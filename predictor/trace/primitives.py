"""Which modules are ML primitives (leaves of the tree), of which kernel class, and which
modules are not nodes at all.

A :class:`PrimitiveRegistry` answers, for each submodule the tracer meets: is it skipped
(Dropout: its ops, none in eval mode, go to the parent; a ``torch.compile`` wrapper: its
original module stands in its place), a primitive (a leaf: ``Linear``, ``LayerNorm``, HF
``Conv1D``, activations, ``*RMSNorm`` ...) of some type and kernel class
(:mod:`predictor.trace.kernels`), or a module node.

Classes are matched with ``isinstance``, so subclasses (``FalconLinear``, Bart's
``BartLearnedPositionalEmbedding``, ``NonDynamicallyQuantizableLinear``) are their base
primitive; a primitive's *type* stays its own class name (node names are ``fqn:ClassName``, as
in IrEne), its *kernel* is the base's class. Classes defined outside torch are matched on leaf
modules by class name or name suffix (``T5LayerNorm``, ``*RMSNorm``), and every leaf class of
``transformers.activations`` is an activation.

Like the op registry it is an object, not module state: each trace uses its own copy of
:func:`default_primitives` (or of the registry it is given), so one call can make one more
class a primitive without changing any other trace::

    build_tree(model, inputs, primitives=[MyFusedBlock])
    build_tree(model, inputs, primitives=default_primitives().register("MyNorm", kernel="norm"))

A class registered without a kernel class takes the class of the costliest op it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from torch import nn

from predictor.trace.kernels import (
    ACTIVATION,
    EMBEDDING,
    GEMM,
    KERNEL_CLASSES,
    NORM,
    POOL,
    SOFTMAX,
)

__all__ = [
    "Primitive",
    "PrimitiveRegistry",
    "default_primitives",
    "is_compiled_wrapper",
    "resolve_primitives",
    "strip_compiled",
]


@dataclass(frozen=True)
class Primitive:
    """A module the tree keeps as one ML leaf: its ``type`` (class name), ``kernel`` class
    (``""``: the class of the costliest op it runs, decided by the tracer) and ``base`` (the
    torch or HF primitive class it derives from: ``Linear`` for ``FalconLinear``; ``""`` when
    matched by a name suffix or as an activation of ``transformers.activations``)."""

    type: str
    kernel: str
    base: str = ""


def _public_base(module: nn.Module, matched: type[nn.Module]) -> str:
    """The name of the registry class ``matched`` (``Linear``), or for a private base
    (``_ConvNd``) the first public torch class in the module's MRO (``Conv2d``)."""
    if not matched.__name__.startswith("_"):
        return matched.__name__
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch.nn") and not cls.__name__.startswith("_"):
            return cls.__name__
    return type(module).__name__


def is_compiled_wrapper(module: nn.Module) -> bool:
    """Whether ``module`` is the wrapper ``torch.compile`` returns (``OptimizedModule``): the
    tree shows its ``_orig_mod`` under the wrapper's name instead."""
    return type(module).__name__ == "OptimizedModule" and isinstance(
        getattr(module, "_orig_mod", None), nn.Module
    )


def strip_compiled(fqn: str) -> str:
    """``fqn`` without the ``_orig_mod`` segments ``torch.compile`` wrappers add
    (``layers.0._orig_mod.mlp`` -> ``layers.0.mlp``): the name the tree gives that module."""
    parts = [p for p in fqn.split(".") if p != "_orig_mod"] if fqn else []
    return ".".join(parts)


def _check_kernel(kernel: str | None) -> str:
    if not kernel:
        return ""
    if kernel not in KERNEL_CLASSES:
        raise ValueError(
            f"unknown kernel class {kernel!r}; use one of {', '.join(KERNEL_CLASSES)} "
            "(or none: the class of the costliest op the primitive runs)"
        )
    return kernel


class PrimitiveRegistry:
    """Primitive module classes with their kernel class (matched with isinstance, leaf or not,
    first match wins), class names and name suffixes with theirs (matched on leaf modules only,
    for classes defined outside torch), and Python modules whose every leaf class is an
    activation primitive."""

    def __init__(
        self,
        classes: Iterable[type[nn.Module] | tuple[type[nn.Module], str]] = (),
        names: Iterable[str] | Mapping[str, str] = (),
        suffixes: Iterable[str] | Mapping[str, str] = (),
        activation_modules: Iterable[str] = (),
    ) -> None:
        self.classes: list[tuple[type[nn.Module], str]] = [
            (c[0], _check_kernel(c[1])) if isinstance(c, tuple) else (c, "") for c in classes
        ]
        self.names: dict[str, str] = (
            {k: _check_kernel(v) for k, v in names.items()}
            if isinstance(names, Mapping)
            else dict.fromkeys(names, "")
        )
        self.suffixes: dict[str, str] = (
            {k: _check_kernel(v) for k, v in suffixes.items()}
            if isinstance(suffixes, Mapping)
            else dict.fromkeys(suffixes, "")
        )
        self.activation_modules: tuple[str, ...] = tuple(activation_modules)

    def register(
        self, cls: type[nn.Module] | str, *, kernel: str | None = None
    ) -> PrimitiveRegistry:
        """Make a module class (any module that is an instance) or a class name (leaf modules
        of that name) a primitive of kernel class ``kernel`` (None: the class of the costliest
        op it runs). A class registered here wins over the defaults. Returns the registry, so
        calls chain."""
        k = _check_kernel(kernel)
        if isinstance(cls, str):
            self.names[cls] = k
        elif isinstance(cls, type) and issubclass(cls, nn.Module):
            self.classes.insert(0, (cls, k))
        else:
            raise TypeError(
                f"a primitive is an nn.Module subclass or a class name (got {cls!r}, "
                f"a {type(cls).__name__})"
            )
        return self

    def classify(self, module: nn.Module) -> Primitive | None:
        """The primitive ``module`` is (its type and kernel class), or None when it is not one."""
        cls = type(module)
        name = cls.__name__
        for base, kernel in self.classes:
            if isinstance(module, base):
                return Primitive(name, kernel, _public_base(module, base))
        if next(iter(module.children()), None) is not None:
            return None
        if name in self.names:
            return Primitive(name, self.names[name], name)
        for suffix, kernel in self.suffixes.items():
            if name.endswith(suffix):
                return Primitive(name, kernel)
        if cls.__module__ in self.activation_modules:
            return Primitive(name, ACTIVATION)
        return None

    def type_of(self, module: nn.Module) -> str | None:
        """The ML-primitive type (the class name) of ``module``, or None when it is not one."""
        prim = self.classify(module)
        return None if prim is None else prim.type

    def kernel_of(self, module: nn.Module) -> str | None:
        """The kernel class of a primitive module (``""`` when the tracer decides it from its
        ops), or None when it is not a primitive."""
        prim = self.classify(module)
        return None if prim is None else prim.kernel

    def is_skipped(self, module: nn.Module) -> bool:
        """Dropout modules are not nodes (their ops, none in eval mode, go to the parent), nor
        are ``torch.compile`` wrappers (their original module is the node)."""
        return (
            isinstance(module, nn.modules.dropout._DropoutNd)
            or type(module).__name__.endswith("Dropout")
            or is_compiled_wrapper(module)
        )

    def copy(self) -> PrimitiveRegistry:
        """An independent registry with the same entries."""
        return PrimitiveRegistry(
            list(self.classes), dict(self.names), dict(self.suffixes), self.activation_modules
        )


_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.Tanh,
    nn.GELU,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Mish,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.Softplus,
    nn.Softsign,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Tanhshrink,
    nn.LogSigmoid,
    nn.GLU,
)
_POOLS: tuple[type[nn.Module], ...] = (
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd,
)

_DEFAULTS = PrimitiveRegistry(
    classes=(
        (nn.Linear, GEMM),
        (nn.Bilinear, GEMM),
        (nn.modules.conv._ConvNd, GEMM),  # implicit GEMM (kernels.py)
        (nn.LayerNorm, NORM),
        (nn.RMSNorm, NORM),
        (nn.GroupNorm, NORM),
        (nn.modules.batchnorm._BatchNorm, ACTIVATION),  # eval mode: a per-channel affine
        (nn.modules.instancenorm._InstanceNorm, NORM),
        (nn.LocalResponseNorm, NORM),
        (nn.Embedding, EMBEDDING),
        (nn.EmbeddingBag, EMBEDDING),
        (nn.Softmax, SOFTMAX),
        (nn.LogSoftmax, SOFTMAX),
        (nn.Softmax2d, SOFTMAX),
        *((c, ACTIVATION) for c in _ACTIVATIONS),
        *((c, POOL) for c in _POOLS),
    ),
    # classes defined outside torch (Hugging Face), by the name of a leaf module's class
    names={"Conv1D": GEMM, "T5LayerNorm": NORM},
    suffixes={"RMSNorm": NORM, "LayerNorm": NORM, "GroupNorm": NORM, "BatchNorm": ACTIVATION},
    activation_modules=("transformers.activations",),
)


def default_primitives() -> PrimitiveRegistry:
    """A fresh copy of the default primitives: torch's linear, convolution, norm, embedding,
    softmax, activation and pooling modules (and their subclasses), HF ``Conv1D`` /
    ``T5LayerNorm`` / ``*RMSNorm`` / ``*LayerNorm`` and every leaf class of
    ``transformers.activations``."""
    return _DEFAULTS.copy()


def resolve_primitives(
    primitives: PrimitiveRegistry | Iterable[type[nn.Module] | str] | None,
) -> PrimitiveRegistry:
    """The registry one trace works on, from what its caller gave: None (the defaults), a
    :class:`PrimitiveRegistry` (copied) or a list of module classes and class names added to
    the defaults (their kernel class: that of the costliest op they run)."""
    if primitives is None:
        return default_primitives()
    if isinstance(primitives, PrimitiveRegistry):
        return primitives.copy()
    if isinstance(primitives, (str, type)) or not isinstance(primitives, Iterable):
        raise TypeError(
            "primitives= takes a PrimitiveRegistry or a list of module classes and class names "
            f"added to the defaults, e.g. primitives=[MyBlock] (got {primitives!r})"
        )
    registry = default_primitives()
    for cls in primitives:
        registry.register(cls)
    return registry
