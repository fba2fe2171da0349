"""The system of record: certificates, orders, payment legs and every effect sandboxes record."""
