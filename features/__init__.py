"""Ranking features: one feature per module, the same code for training logs and live ranking."""
