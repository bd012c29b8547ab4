"""Shipping methods made through the API, as an admin would."""

API = "/api/v1"


def method(client, as_admin, **fields):
    body = {"name": "Standard", "carrier": "Post", "price": "5.00", "countries": ["*"],
            "min_days": 3, "max_days": 5, **fields}  # fmt: skip
    response = client.post(f"{API}/shipping-methods", headers=as_admin, json=body)
    assert response.status_code == 201, response.json
    return response.json
