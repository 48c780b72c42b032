"""nefeli-eventd: Ganeti job events to AMQP (snf-ganeti-eventd's role)."""
