"""deficit: ingest package."""
