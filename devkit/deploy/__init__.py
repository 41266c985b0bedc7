"""``make deploy``: create or update each worker's RunPod template and endpoint from its endpoint.toml."""
