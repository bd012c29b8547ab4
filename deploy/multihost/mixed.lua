-- wrk's mixed workload for throughput.py: 6 in 10 requests list the catalog, 3 read one
-- product, 1 places an order of one unit of the hot product (a customer's token in TOKEN,
-- the product in PRODUCT).
local token = os.getenv("TOKEN")
local product = os.getenv("PRODUCT")
local order = '{"items": [{"product_id": ' .. product .. ', "quantity": 1}], "shipping_address": '
  .. '{"line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}}'
local turn = 0

request = function()
  turn = turn + 1
  local slot = turn % 10
  if slot == 0 then
    return wrk.format("POST", "/api/v1/orders",
      {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, order)
  elseif slot <= 3 then
    return wrk.format("GET", "/api/v1/products/" .. product)
  end
  return wrk.format("GET", "/api/v1/products?page_size=20")
end
