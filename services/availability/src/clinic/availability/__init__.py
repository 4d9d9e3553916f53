"""The availability service: Free-time search built from booking's events: slots, next
available, across locations.
"""
