"""Notification's HTTP API: its internal routes, the SMS provider's webhooks and the pages
action links open."""
