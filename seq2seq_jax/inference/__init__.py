"""Using a trained run: loading a workdir, translating, scoring text, attention plots."""
