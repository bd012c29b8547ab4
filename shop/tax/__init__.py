"""Tax rates by destination: what admins set per country and region, and the rate an
address pays."""
