"""Inventory domain: the stock ledger, purchase orders, low-stock notifications."""
