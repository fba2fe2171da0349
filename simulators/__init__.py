"""Local stand-ins for the outside world's payment systems, speaking their real protocols.

``refunds up`` runs them on loopback for the embedded default: an Alipay OpenAPI gateway and a
payment provider's refund API with its signed settlement webhooks. Each checks the protocol as
strictly as the real system would and keeps its own record of what it paid.
"""
