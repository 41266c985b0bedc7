"""Dev-side tooling, never baked into an image: local endpoint, deploy, client, fixtures, benchmarks."""
