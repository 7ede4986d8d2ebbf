"""The message core: the subscription index (plain synchronous code, no I/O)."""
