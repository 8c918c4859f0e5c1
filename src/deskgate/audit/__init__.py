"""The provable decision chain: keys, signatures, the hash-chained log, Merkle checkpoints."""
