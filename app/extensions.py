"""Flask extensions, created unbound and initialised in ``create_app``.

Flask-Migrate (``flask db``) is not here: it imports all of Alembic, so ``create_app`` sets it up
only where the migration commands can be run (see ``create_app``)."""

from flask_sqlalchemy import SQLAlchemy

from app.models.base import Base

db = SQLAlchemy(model_class=Base)
