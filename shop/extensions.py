"""Extension instances, configured later by create_app()."""

from flask_caching import Cache
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from shop.api import Api
from shop.db import Base

# Objects stay readable after commit: responses are serialised after the unit of work ends.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate(render_as_batch=True, compare_type=True)
jwt = JWTManager()
cache = Cache()
cors = CORS()
limiter = Limiter(key_func=get_remote_address)


api = Api()
