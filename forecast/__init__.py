"""forecast: turn an argument about diplomacy into a checkable Bayesian forecast."""
