"""Untrusted text: normalise, strip, screen for instructions, wrap and datamark (DESIGN §6)."""
