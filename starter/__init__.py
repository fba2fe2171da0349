"""Client side: the ``refunds`` command line and the helpers it uses to talk to Temporal."""
