"""Agent identities: one NATS user and one Ed25519 key per agent, revocable at once."""
