"""Sans-I/O NATS protocol: parsing bytes into events and encoding replies (no trio, no sockets)."""
