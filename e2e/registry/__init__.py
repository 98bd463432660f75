"""Test helpers for the OCI side of wasmkube: real registries, real artifacts, misbehaving stubs.

No tests live here; ``e2e/test_registry.py`` imports the fixtures from :mod:`.fixtures`.
"""
