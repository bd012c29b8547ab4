"""What ships to run shop: docker-compose's Redis services keep jobs and never evict them,
the cache evicts and keeps nothing; the image carries gunicorn's settings."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_queues_persist_and_the_cache_evicts_in_their_own_redis():
    services = compose()["services"]
    queues = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in queues and "--appendfsync everysec" in queues
    assert "--maxmemory-policy noeviction" in queues and services["redis"]["volumes"]
    cache = " ".join(services["cache"]["command"])
    assert "--maxmemory-policy allkeys-lru" in cache and "--maxmemory " in cache
    assert "--appendonly no" in cache
    environment = services["web"]["environment"]
    assert environment["REDIS_URL"].startswith("redis://redis:")
    assert environment["CACHE_REDIS_URL"].startswith("redis://cache:")


def test_the_image_carries_gunicorns_settings():
    assert "gunicorn.conf.py" in (ROOT / "Dockerfile").read_text()
