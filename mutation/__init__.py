"""``make mutation``: mutation testing of the safety core."""
