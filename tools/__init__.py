"""Developer tools of the suite (not shipped with the functions)."""
