"""Orders domain: cart, addresses, checkout, status machine, payments."""
