"""The chaos run: refunds under worker kills, a server restart and payment faults."""
