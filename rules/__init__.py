"""Learning rules as plugins: hook specifications, the plugin manager and the built-in rules."""
