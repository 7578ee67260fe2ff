"""Config files: each exposes `get_config()` returning a locked ConfigDict."""
