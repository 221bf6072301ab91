"""Small example models bundled with pytest-irene (importable as ``examples.tiny_models:...``)."""
