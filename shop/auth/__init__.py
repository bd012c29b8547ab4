"""Accounts and users domain."""
