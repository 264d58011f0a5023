"""Fused PyTensor operations of the likelihood terms: one node with its gradient instead of many small ones."""
