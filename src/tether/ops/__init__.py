"""Operations: metrics, alerts, status."""
