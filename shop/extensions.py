"""Extension instances, configured later by create_app() (the database's is shop.db.db,
the API's shop.api.api)."""

from flask_caching import Cache
from flask_compress import Compress
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate

migrate = Migrate(render_as_batch=True, compare_type=True)
jwt = JWTManager()
cache = Cache()
compress = Compress()
cors = CORS()
limiter = Limiter(key_func=get_remote_address)
