"""``autoscaler import``: KEDA ScaledObjects and HorizontalPodAutoscalers as this
project's config.

``manifests`` reads the objects (a file or stdin; one, a List, or many documents);
``auth`` reads the TriggerAuthentications of the input (their parameters' names, never
their values); ``keda`` (with ``triggers``, the key tables) and ``hpa`` map one object each
to a draft target, key by key, with a note for everything left out; ``assemble`` names the
targets, shares Kafka clusters and Prometheus servers between them, writes the header and
checks the result with the config loader; the sub-command is ``autoscaler.commands.importer``.
Nothing here talks to a cluster.
"""

from autoscaler.importer.assemble import Imported, ImportOptions, check, import_objects, render
from autoscaler.importer.drafts import Note
from autoscaler.importer.manifests import KubeObject, ManifestError, parse_objects, read_input

__all__ = [
    "ImportOptions",
    "Imported",
    "KubeObject",
    "ManifestError",
    "Note",
    "check",
    "import_objects",
    "parse_objects",
    "read_input",
    "render",
]
