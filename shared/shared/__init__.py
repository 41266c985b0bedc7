"""Shared by every worker image: errors, encoding, validation, serving. Import submodules directly."""
