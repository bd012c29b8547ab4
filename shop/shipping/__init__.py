"""Shipping methods: what admins offer per destination country, and what a cart pays for each."""
