"""Subscription billing on the durable workflow engine (see tasks.py)."""
