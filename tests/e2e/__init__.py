"""End-to-end tests on the real workerd runtime (a package, so its conftest stays its own)."""
