import reliability.plugin  # noqa: F401

# isort: split
# Template: all four templates at once, weighted (copy and edit the weights).
#   RELIABILITY_PG_DSN=... RELIABILITY_REDIS_URL=... RELIABILITY_WS_URL=... \
#   locust -f locustfiles/mixed.py --headless -u 100 -r 20 -t 5m --host http://127.0.0.1:8080
import importlib.util
from pathlib import Path
from types import ModuleType


def _template(name: str) -> ModuleType:
    # Loaded by path under a private name: a plain `import websocket` would find the
    # websocket-client package, and Locust would also run every class imported by name.
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"reliability_template_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


api, db, cache, websocket = (_template(name) for name in ("api", "db", "cache", "websocket"))


class MixedApi(api.ApiShopper):
    weight = 4


class MixedDb(db.DbUser):
    weight = 2


class MixedCache(cache.CacheUser):
    weight = 3


class MixedWs(websocket.WsUser):
    weight = 1
