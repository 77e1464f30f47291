"""Migration scripts, applied in revision order by Alembic (not imported as modules)."""
