"""Entry point for gunicorn (`wsgi:app`) and Celery (`celery -A wsgi:celery`)."""

from app import create_app

app = create_app()
celery = app.extensions["celery"]
