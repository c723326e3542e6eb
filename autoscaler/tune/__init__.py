"""``autoscaler tune``: search a target's settings on its history and recommend the cheapest
one that meets an SLO budget, scored out of sample."""
