"""Price sources: a seeded simulator and a CSV replay of OHLCV bars."""
