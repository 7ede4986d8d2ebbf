"""Configuration: the NATS configuration language (nats-server's `.conf` files)."""
