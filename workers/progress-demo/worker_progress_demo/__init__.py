"""progress-demo: the reference worker, a generator that reports progress at every step."""
