"""The booking service: Decides who holds which minutes of which provider, room or device, and
records every decision in an append-only event store.
"""
