"""Frozen copies of earlier implementations that tests compare the current code with."""
