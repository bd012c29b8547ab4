"""Reviews domain: customers rate the products they ordered; the ratings shown on products."""
