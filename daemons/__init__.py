"""nefeli."""
