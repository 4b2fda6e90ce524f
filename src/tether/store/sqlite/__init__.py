"""SQLite adapters of Tether's storage ports: the embedded default for one process."""
