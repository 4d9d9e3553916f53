"""The notification service: Reminders, waitlist offers and signed action links, built from
booking's events.
"""
