"""Entry point for gunicorn (`wsgi:app`) and Celery (`celery -A wsgi:celery`).

The only module that builds the app at import, and the one place where the web face and
the workers meet: `app` knows nothing of `tasks`, and `tasks` nothing of the HTTP faces.
"""

from app import create_app
from tasks.celery_app import celery_init_app

app = create_app()
celery = celery_init_app(app)
