"""User strings are data: model names, fqns, messages and paths escaped for the medium they are
printed in (Markdown for pull-request comments and step summaries, terminals, XML).

A model name can hold anything a test or a budgets file puts in it (``</details><script>``,
``|``, ``@mention``, backticks, newlines); printed raw it would break the Markdown table, inject
HTML into the comment, ping a user or a team, or move the terminal's cursor.
"""

from __future__ import annotations

import html
import re

__all__ = ["md_code", "md_text", "printable"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def printable(text: str) -> str:
    """``text`` with control characters (newlines, escapes, bells) shown as ``\\xNN``, so a
    user string prints on one line and cannot drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _html(text: str) -> str:
    return html.escape(printable(text), quote=True).replace("@", "&#64;")


def md_text(text: str) -> str:
    """``text`` as inert Markdown: HTML escaped, Markdown punctuation backslash-escaped,
    ``@`` kept from mentioning, control characters shown as ``\\xNN``; safe in a table cell."""
    return _MD_SPECIAL.sub(r"\\\1", _html(text))


def md_code(text: str) -> str:
    """``text`` as inline code (``<code>``, which a backtick inside cannot close), safe in a
    table cell (``|`` escaped)."""
    return "<code>" + _html(text).replace("|", "&#124;") + "</code>"
