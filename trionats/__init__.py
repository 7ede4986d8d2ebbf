"""trionats: a NATS server in Python on Trio, wire-compatible with nats-server 2.15."""

__version__ = "0.1.0"
