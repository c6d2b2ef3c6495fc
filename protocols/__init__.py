"""deficit: protocols package."""
