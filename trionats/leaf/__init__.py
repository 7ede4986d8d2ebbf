"""Leaf nodes: this server as a leaf of hubs it dials, and as a hub for leaves that dial it."""
