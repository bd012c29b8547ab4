"""Merchandising domain: what helps a customer buy (the wishlist, and its back-in-stock
emails); sits above the catalog and below orders."""
