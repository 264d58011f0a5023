"""``design``: planning a confirmatory trial from a run's posterior (assurance over the per-arm n)."""
