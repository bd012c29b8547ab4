"""Operations: GET /metrics (Prometheus), GET /admin/system, and what they read."""
