"""Operations: structured logs, Prometheus metrics, request ids, health and readiness."""
