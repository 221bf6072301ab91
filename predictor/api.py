"""The library in one call: a model and its inputs -> the predicted :class:`EnergyTree`.

``predict(model, inputs)`` traces ``model`` (:func:`predictor.trace.tracer.build_tree`) and
predicts every node with a hardware profile (:func:`predictor.learn.profile.load_profile`).
Importing this module imports no torch; calling it does.

>>> import torch
>>> from torch import nn
>>> tree = predict(nn.Linear(4, 2), torch.zeros(8, 4), name="linear")
>>> tree.root.name, tree.root.energy_j > 0
('linear', True)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from predictor.trace.tree import EnergyTree

if TYPE_CHECKING:
    from predictor.devices.profile import DeviceProfile
    from predictor.learn.generation import GenerationPrediction
    from predictor.learn.profile import Profile
    from predictor.trace.inputs import Inputs
    from predictor.trace.workload import Workload

__all__ = ["predict", "predict_generation"]


def predict(
    model: Any,
    inputs: Inputs,
    *,
    profile: Profile | DeviceProfile | str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> EnergyTree:
    """The predicted tree of ``model`` (an ``nn.Module``) on ``inputs``: joules on every node.

    ``inputs``: a tensor (the forward's one positional argument), a tuple or list (positional
    arguments) or a mapping (keyword arguments, e.g. ``{"input_ids": ids}``), so a forward
    parameter named like an option (``seq_len``, ``name``) is still the model's.
    ``profile``: a :class:`~predictor.learn.profile.Profile`, a shipped profile's name, a
    profile file's path, or None for the default profile; the trace uses the counting mode the
    profile was trained on. ``name``: the root's name (default: the model's class name).

    Raises ModelError (wrong inputs, including SequenceTooLong), TraceError (the forward
    fails) and ProfileError (no such profile, or one that cannot be trusted).
    """
    from predictor.devices.profile import DeviceProfile
    from predictor.learn.profile import Profile, load_profile, profile_counting
    from predictor.trace.tracer import build_tree

    chosen = profile if isinstance(profile, (Profile, DeviceProfile)) else load_profile(profile)
    tree = build_tree(model, inputs, name=name, counting_mode=profile_counting(chosen))
    return chosen.predict(tree)


def predict_generation(
    model: Any,
    workload: Workload,
    *,
    profile: Profile | DeviceProfile | str | os.PathLike[str] | None = None,
    name: str | None = None,
) -> GenerationPrediction:
    """The predicted generation of ``model`` (a causal LM, e.g. a transformers
    ``*ForCausalLM``; on the meta device it costs no memory) through ``workload``: its
    ``energy`` (``prefill_j``, ``decode_j``, ``j_per_output_token``, ``j_per_request``, J), the
    ``prefill`` tree and the mean ``decode_step`` tree, joules on every node.

    >>> import torch, transformers
    >>> from predictor import Workload
    >>> config = transformers.LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128,
    ...     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    >>> with torch.device("meta"):
    ...     llama = transformers.LlamaForCausalLM(config)
    >>> g = predict_generation(llama, Workload(batch_size=8, prompt_len=32, new_tokens=16))
    >>> g.energy.j_per_output_token > 0, g.decode_step.batch_size
    (True, 8)
    """
    from predictor.devices.profile import DeviceProfile
    from predictor.gate.engine import predict_generation_model
    from predictor.learn.profile import Profile, load_profile

    chosen = profile if isinstance(profile, (Profile, DeviceProfile)) else load_profile(profile)
    return predict_generation_model(model, workload, chosen, name=name or type(model).__name__)
