"""Reports domain: daily sales aggregates and the report endpoints."""
