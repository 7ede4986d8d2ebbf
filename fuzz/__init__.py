"""Fuzzing trionats: whole connections of every protocol, fed mutated streams over memory streams.

inputs.py builds the streams, mutate.py breaks them, harness.py runs them against one
in-process server with a canary client, and `python -m fuzz` is the long run (docs/fuzzing.md).
"""
