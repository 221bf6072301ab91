"""Which modules are ML primitives (leaves of the tree) and which are not nodes at all.

A :class:`PrimitiveRegistry` answers, for each submodule the tracer meets: is it skipped
(Dropout: its ops, none in eval mode, go to the parent), a primitive of some type (a leaf:
``Linear``, ``LayerNorm``, HF ``Conv1D``, activations, ``*RMSNorm`` ...), or a module node.

Like the op registry it is an object, not module state: each trace uses its own copy of
:func:`default_primitives` (or of the registry it is given), so one call can make one more
class a primitive without changing any other trace::

    build_tree(model, inputs, primitives=[MyFusedBlock])
    build_tree(model, inputs, primitives=default_primitives().register("MyNorm"))
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

__all__ = ["PrimitiveRegistry", "default_primitives", "resolve_primitives"]


class PrimitiveRegistry:
    """Primitive module classes (matched with isinstance, leaf or not), class names and name
    suffixes (matched on leaf modules only, for classes defined outside torch), and Python
    modules whose every leaf class is an activation primitive. A primitive's type is its
    class name."""

    def __init__(
        self,
        classes: Iterable[type[nn.Module]] = (),
        names: Iterable[str] = (),
        suffixes: Iterable[str] = (),
        activation_modules: Iterable[str] = (),
    ) -> None:
        self.classes: list[type[nn.Module]] = list(classes)
        self.names: set[str] = set(names)
        self.suffixes: tuple[str, ...] = tuple(suffixes)
        self.activation_modules: tuple[str, ...] = tuple(activation_modules)

    def register(self, cls: type[nn.Module] | str) -> PrimitiveRegistry:
        """Make a module class (any module that is an instance) or a class name (leaf modules
        of that name) a primitive. Returns the registry, so calls chain."""
        if isinstance(cls, str):
            self.names.add(cls)
        elif isinstance(cls, type) and issubclass(cls, nn.Module):
            self.classes.append(cls)
        else:
            raise TypeError(
                f"a primitive is an nn.Module subclass or a class name (got {cls!r}, "
                f"a {type(cls).__name__})"
            )
        return self

    def type_of(self, module: nn.Module) -> str | None:
        """The ML-primitive type (the class name) of ``module``, or None when it is not one."""
        cls = type(module)
        if isinstance(module, tuple(self.classes)):
            return cls.__name__
        if next(iter(module.children()), None) is not None:
            return None
        name = cls.__name__
        if name in self.names or name.endswith(self.suffixes):
            return name
        if cls.__module__ in self.activation_modules:
            return name
        return None

    def is_skipped(self, module: nn.Module) -> bool:
        """Dropout modules are not nodes (their ops, none in eval mode, go to the parent)."""
        return isinstance(module, nn.modules.dropout._DropoutNd) or type(module).__name__.endswith(
            "Dropout"
        )

    def copy(self) -> PrimitiveRegistry:
        """An independent registry with the same entries."""
        return PrimitiveRegistry(self.classes, self.names, self.suffixes, self.activation_modules)


_DEFAULTS = PrimitiveRegistry(
    classes=(
        nn.Linear,
        nn.Bilinear,
        nn.LayerNorm,
        nn.RMSNorm,
        nn.GroupNorm,
        nn.modules.batchnorm._BatchNorm,
        nn.Embedding,
        nn.Conv1d,
        nn.Conv2d,
        nn.Conv3d,
        nn.Tanh,
        nn.GELU,
        nn.ReLU,
        nn.ReLU6,
        nn.LeakyReLU,
        nn.SiLU,
        nn.Sigmoid,
        nn.Mish,
        nn.ELU,
        nn.SELU,
        nn.Softplus,
        nn.Hardswish,
        nn.Hardsigmoid,
        nn.Hardtanh,
        nn.GLU,
    ),
    # classes defined outside torch (Hugging Face), by the name of a leaf module's class
    names=("Conv1D", "T5LayerNorm"),
    suffixes=("RMSNorm",),
    activation_modules=("transformers.activations",),
)


def default_primitives() -> PrimitiveRegistry:
    """A fresh copy of the default primitives: torch's linear, norm, embedding, convolution
    and activation modules, HF ``Conv1D`` / ``T5LayerNorm`` / ``*RMSNorm`` and every leaf
    class of ``transformers.activations``."""
    return _DEFAULTS.copy()


def resolve_primitives(
    primitives: PrimitiveRegistry | Iterable[type[nn.Module] | str] | None,
) -> PrimitiveRegistry:
    """The registry one trace works on, from what its caller gave: None (the defaults), a
    :class:`PrimitiveRegistry` (copied) or a list of module classes and class names added to
    the defaults."""
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
