"""Live metric sources: each turns a server's answer into an observation, or an ``Unavailable``."""
