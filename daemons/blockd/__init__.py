"""nefeli-blockd: the Pithos/Swift object API over the embedded block store (docs/blockd.md)."""
