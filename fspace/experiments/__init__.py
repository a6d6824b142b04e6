"""Ready-made experiments that record into an fspace experiment directory."""
