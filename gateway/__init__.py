"""Live delivery: NATS JetStream to WebSocket `/ws`; one consumer per process, one queue each."""
