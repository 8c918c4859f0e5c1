"""Typed messages at every boundary: what travels on the bus and what is stored."""
