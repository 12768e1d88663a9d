"""Tests of pynenc-wf-testing."""
