"""Events domain: the durable log of what happened (orders, payments, stock), written in the
transaction of each change, and read as a feed in the order it became visible."""
