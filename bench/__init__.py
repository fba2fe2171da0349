"""``make bench``: the refund engine measured against a baseline in the same run."""
