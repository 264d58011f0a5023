"""Likelihood terms: one module per evidence level."""
