"""HTTP monitoring like nats-server's: pure snapshot builders and a small h11 server."""
