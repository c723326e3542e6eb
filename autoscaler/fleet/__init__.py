"""Many workloads at once: ``replay`` and ``tune`` over a fleet, fanned out on
``dask.distributed`` (local worker processes, or a cluster's scheduler)."""
