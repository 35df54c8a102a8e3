"""gunicorn's settings for the Procfile's ``web`` command (``-c gunicorn.conf.py``; gunicorn would
also read this file from the working folder by default).

Everything else (workers, bind address) is on the command line, from ``WEB_CONCURRENCY`` and ``PORT``.
"""

from __future__ import annotations

import gc
import os
from typing import Any


def post_fork(server: Any, worker: Any) -> None:
    """In each worker, just before it builds the app: build it without the migration commands.

    A web worker never runs ``flask db``, and Flask-Migrate imports all of Alembic: about 8 MB of
    each worker's memory (the target is under 150 MB). Only this worker process gets the variable,
    so ``flask db upgrade`` (the Procfile's ``release``) and every other command keep them."""
    os.environ["REVIEWLINE_WITHOUT_MIGRATIONS"] = "1"  # app.WITHOUT_MIGRATIONS


def post_worker_init(worker: Any) -> None:
    """Once a worker has built the app, keep what it built out of the garbage collector's sweeps.

    What the app holds from the start (modules, models and metadata, settings: about 159,000
    objects) was walked again by every full collection, and a message's short-lived objects
    trigger one every few thousand messages (a tenth of a second each with what the first requests
    add). ``gc.freeze`` moves what exists now to a generation no collection walks. What is built
    later (the flows and statement caches the first requests load) is collected as before. A
    frozen object is still freed when its last reference goes; only cycles among frozen objects
    would stay, and these live as long as the worker anyway."""
    gc.freeze()
