"""The offline evaluation over the demo generator's orders: a table of hit rate and NDCG at 10
per algorithm and for best sellers, the structure of the data found by collaborative filtering."""

import re

from shop.recommendations.evaluate import held_out


def test_evaluate_prints_each_algorithm_and_the_baseline(app):
    runner = app.test_cli_runner()
    seeded = runner.invoke(
        args=["seed", "--customers", "80", "--products", "60", "--orders", "500"]
    )
    assert seeded.exit_code == 0, seeded.output
    assert "Generated 500 orders" in seeded.output
    result = runner.invoke(args=["recommendations", "evaluate"])
    assert result.exit_code == 0, result.output
    assert "hit_rate@10" in result.output and "ndcg@10" in result.output
    figures = {
        name: (float(hit), float(ndcg))
        for name, hit, ndcg in re.findall(r"^(\w+)\s+([\d.]+)\s+([\d.]+)$", result.output, re.M)
    }
    assert set(figures) == {"collaborative", "content_based", "hybrid", "best_seller"}
    assert all(0 <= hit <= 1 and 0 <= ndcg <= hit for hit, ndcg in figures.values())
    assert figures["hybrid"][0] >= 2 * figures["best_seller"][0]
    assert int(re.search(r"^(\d+) customers", result.output, re.M).group(1)) > 20


def test_the_last_purchase_is_held_out_of_customers_with_two_or_more():
    rows = [
        (1, 10, "purchase", 1, 1), (1, 11, "purchase", 1, 2), (1, 12, "cart_add", 1, 3),
        (2, 10, "purchase", 1, 1), (3, 13, "purchase", 1, 5), (3, 10, "purchase", 1, 4),
    ]  # fmt: skip
    assert held_out(rows) == {1: 11, 3: 13}
