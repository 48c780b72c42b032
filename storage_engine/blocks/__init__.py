"""The block layer: segments, records, the LMDB index, compression, the block store,
group commit, GC, scrub, verify, recovery and quarantine.

Knows nothing of maps' owners (objects, volumes) nor of any protocol.
"""
