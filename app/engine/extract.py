"""A Babel extractor for flow YAML: ``pybabel extract`` pulls every child-facing message out.

Each message carries its flow and node as the gettext context, so the same English words in two
places can be translated differently. Registered in pyproject.toml as ``reviewline_flows``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from app.engine.definition import MESSAGES_FILE, parse_flow, parse_messages, read_yaml

ExtractResult = tuple[int, str, tuple[str, str], list[str]]


def extract_flows(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[ExtractResult]:
    """Yield ``(line, "pgettext", (context, text), comments)`` for every message in a YAML file."""
    name = getattr(fileobj, "name", "flow.yaml")
    text = fileobj.read().decode(options.get("encoding", "utf-8"))
    source = str(name)
    data = read_yaml(text)
    if str(name).endswith(MESSAGES_FILE) or (isinstance(data, dict) and "messages" in data):
        refs = parse_messages(text, source).messages()
    else:
        refs = parse_flow(text, source).messages()
    for ref in refs:
        comments = [ref.comment] if ref.comment else []
        yield ref.line, "pgettext", (ref.context, ref.text), comments
