"""PostgreSQL adapters of Tether's storage ports."""
