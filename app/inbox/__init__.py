"""The IRO inbox: caseload, threads and replies, review workspace, action plans, child admin.

Every view that shows a child's data gets the child through ``app.access.child_for_staff`` (or
lists children through ``visible_children``), so one function decides and audits every read.
Modules: ``caseload`` (the list, the urgent queue, the audit log), ``threads`` (messages, replies,
notes, concerns), ``reviews`` (wishes and feelings, actions, updates), ``children`` (add a child,
change IRO, review dates, linking channels).
"""

from __future__ import annotations

from flask import Blueprint

from app.auth import staff_error_pages

bp = Blueprint("inbox", __name__, url_prefix="/inbox", template_folder="templates")
staff_error_pages(bp)

# Views register themselves on ``bp``.
from app.inbox import caseload, children, reviews, threads  # noqa: E402, F401
