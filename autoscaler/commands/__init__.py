"""The sub-commands of ``autoscaler`` (``cli``): ``replay``, ``tune``, a fleet of either,
``import``. Each parses its options, calls the packages below and prints; nothing below
imports a command. ``options`` holds what ``replay``, ``tune`` and fleets share."""
