"""Audit trail domain."""
