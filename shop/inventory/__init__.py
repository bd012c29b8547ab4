"""Inventory domain: the stock ledger."""
