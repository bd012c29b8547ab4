"""The catalog's cache namespaces (see shop.caching)."""

# Every catalog answer: product, variant and category writes, reviews, and every stock change.
CATALOG = "catalog"
# Which products match a filter or a search, how well, and which are low on stock: product,
# variant and category writes, and stock crossing zero or its threshold. Other sales change
# CATALOG (the answers show stock), not the matches.
CATALOG_MATCHES = "catalog-matches"
# The flash sales running and the next moment one starts or ends (products.pricing): flash-sale
# and category writes (a category's subcategories are on sale with it).
FLASH_SALES = "flash-sales"
