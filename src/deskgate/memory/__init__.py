"""The agents' memory after Letta: core blocks, recall, archival, and context within a budget."""
