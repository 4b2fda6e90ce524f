"""Outgoing webhooks: endpoints, signed deliveries, the dispatcher."""
