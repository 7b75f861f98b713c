"""Scheduled work: triggers fire on every replica, claims make each run once."""
