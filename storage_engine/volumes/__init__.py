"""Thin-clone VM volumes on the block store (docs/volumes.md).

A volume is a map of fixed-size blocks; each entry is the zero block, a
shared content-addressed block of the block store, a block the volume owns
and writes in place, or a frozen block (immutable, waiting to be hashed into
the block store).  Snapshot and clone copy maps; data never moves.  The
package uses only the block layer and the map layer (see backing.py).
"""

from .errors import VolumeBusy, VolumeError, VolumeExists, VolumeNotFound, VolumeReadOnly
from .format import VolumeInfo
from .store import VolumeStore, open_volumes

__all__ = [
    "VolumeBusy",
    "VolumeError",
    "VolumeExists",
    "VolumeInfo",
    "VolumeNotFound",
    "VolumeReadOnly",
    "VolumeStore",
    "open_volumes",
]
