"""The domain at the bottom: certificates, money, rule decisions, errors; no framework."""
