"""Integrations with the outside world: model files, Hugging Face, NVML, launch commands."""
