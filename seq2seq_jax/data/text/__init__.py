"""Parallel text: reading, splitting, tokenizing once and the token store."""
