"""What volume operations refuse, each with a message fit for an operator."""

from __future__ import annotations


class VolumeError(Exception):
    """A volume operation was refused; nothing changed."""


class VolumeNotFound(VolumeError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "volume not found"


class VolumeExists(VolumeError):
    pass


class VolumeReadOnly(VolumeError):
    pass


class VolumeBusy(VolumeError):
    pass
