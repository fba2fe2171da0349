"""Workflow code: the refund workflow, its models and the pure rules it applies."""
