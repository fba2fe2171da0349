"""The refund console: customers' and reviewers' web pages on the refund engine."""
