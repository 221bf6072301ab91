"""Device profiles: GPUs described by their public specifications, predicted physically.

- :mod:`predictor.devices.specs`: the shipped devices' datasheet figures and sources;
- :mod:`predictor.devices.physical`: the physical model (roofline time per kernel class,
  static + dynamic energy, board-power cap);
- :mod:`predictor.devices.profile`: :class:`DeviceProfile`, a profile kind predicting with it.
"""

from __future__ import annotations

__all__ = ["DEVICE_SPECS", "DeviceProfile", "DeviceSpec", "PhysicalModel", "device_profile"]

from predictor.devices.physical import PhysicalModel
from predictor.devices.profile import DeviceProfile, device_profile
from predictor.devices.specs import DEVICE_SPECS, DeviceSpec
