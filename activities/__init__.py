"""Activities: everything that reads or changes the world on behalf of a refund workflow."""
