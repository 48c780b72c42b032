"""nefeli-progress-monitor: snf-image progress into the eventd spool (snf-progress-monitor's role)."""
