"""The one exception operator input can cause, always a single line.

The runner prints it as ``<prog>: <reason>`` on stderr, which is the line
``systemctl status`` shows; so it must name the file, line, key or flag and
never span lines.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """Bad operator input (file, flag or value); its text is always one line."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))

    @property
    def reason(self) -> str:
        return str(self.args[0])


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")
