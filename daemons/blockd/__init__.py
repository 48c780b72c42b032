"""nefeli-blockd: the Pithos/Swift object API over the embedded block store (DESIGN.md §3)."""
