"""Recommendations: for a customer (collaborative, content-based, hybrid) and for a product
(bought together, similar), precomputed by the `recommendations` job and served in one query."""
