"""The agent side: drafting and submitting directives with the agent role's rights only."""
