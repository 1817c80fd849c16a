"""Production settings for gunicorn: `gunicorn -c gunicorn.conf.py 'app:create_app()'`."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Threaded workers heartbeat while a response streams: a sync worker is killed after `timeout`
# even in the middle of a large attendee export.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 30
# Behind a proxy that sets X-Forwarded-For, trust it only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# No access log by default: manage links carry their key in the path (/r/<token>). If you turn
# it on, keep it as private as the database.
accesslog = None
