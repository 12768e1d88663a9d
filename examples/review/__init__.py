"""Document review on the durable-workflow engine, with a planted race (see tasks.py)."""
