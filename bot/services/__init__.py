"""Each feature's use cases, shared by its commands and its jobs."""
