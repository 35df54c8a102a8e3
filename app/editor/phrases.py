"""Placeholder: filled in by the editor work on issue 6."""
