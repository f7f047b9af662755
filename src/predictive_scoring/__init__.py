"""Predictive lead scoring learned from historical lead behaviour."""
