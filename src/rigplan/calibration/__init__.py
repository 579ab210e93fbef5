"""Calibration: engine profiles fitted to published measurements, and the user's own."""
