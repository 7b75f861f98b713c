"""Pure rules of each feature: no I/O, no SDK, no scheduler."""
