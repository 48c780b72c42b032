"""The map layer: refcounted hash lists over the block layer, and the map-reference rule.

Used by every service that stores content as maps (the object service, volumes).
"""
