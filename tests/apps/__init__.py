"""Module-level pynenc apps used by the test-suite (pynenc resolves tasks by module path)."""
