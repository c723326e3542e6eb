"""The live service: the imperative shell around the pure poll step.

``service`` builds sources, forecasters and one ``controller`` per target from the config
and runs them as supervised tasks (``supervisor``); the controller gathers observations,
reads the scale through the ``actuator`` (the Kubernetes ``/scale`` subresource), calls the
poll step and patches; ``leader`` holds the Lease that decides who patches; ``memory``
returns freed heap to the OS after heavy work. Nothing here decides anything.
"""
