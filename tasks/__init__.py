"""Celery tasks: the drain and storage maintenance. They call the adapters in `app/`."""
