"""Stage 4, measure: energy meters (NVML, RAPL, a fake device), per-node calibration on real
hardware, and metering the gate's models.
"""
