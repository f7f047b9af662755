"""Estimators: the pipeline, calibration and the scorer every bundle holds, and tuning."""
