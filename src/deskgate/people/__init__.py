"""People: principals' accounts, sealed signing keys and passkeys."""
