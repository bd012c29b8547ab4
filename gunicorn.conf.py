"""gunicorn's settings for shop (read from the working directory; command-line flags win).

gunicorn answers requests it refuses itself with an HTML page. Its request-line and header
limits are therefore set above shop's own (shop.observability: MAX_URL_BYTES and
MAX_HEADER_BYTES), so that shop answers an oversized request with its 414 or 431 problem+json.
A request line of 0 means gunicorn's own cap of 1 MiB.
"""

limit_request_line = 0
limit_request_field_size = 65536
