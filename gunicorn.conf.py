"""gunicorn's settings for the Procfile's ``web`` command (``-c gunicorn.conf.py``).

Everything else (workers, bind address) is on the command line, from ``WEB_CONCURRENCY`` and ``PORT``.
"""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Once a worker has built the app, keep what it built out of the garbage collector's sweeps.

    The app's long-lived objects (flows, phrase lists, translations, SQLAlchemy's metadata and
    statement caches: about 200,000 objects) were walked again by every full collection, and a
    message's short-lived objects trigger one every few thousand messages (a tenth of a second
    each). ``gc.freeze`` moves what exists now to a generation no collection walks; it is still
    freed normally when nothing refers to it."""
    gc.freeze()
