"""Sharding the targets across service replicas: which shard a target belongs to, and
which shards each live replica should hold. Pure: the Lease I/O is the live shell's."""
