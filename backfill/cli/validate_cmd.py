"""`aep-migrate validate`: check CSV exports against their contracts (issue 4)."""
