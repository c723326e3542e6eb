"""``autoscaler import``: KEDA ScaledObjects and HPAs in, this project's config out.

The config is written only once the project's own loader accepts it (the very text
written), so an imported file always passes ``autoscaler validate``. Exit codes as the
other commands: 0 when at least one target was written, 2 when none could be (or the
input cannot be read, or the result would not be valid), each reason one line on stderr.
Every note (a key not mapped, a secret to fill in) is a ``warning:`` line on stderr and,
in YAML, a comment in the file's header.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from autoscaler.config import ConfigError
from autoscaler.importer.assemble import ImportOptions, check, import_objects, render
from autoscaler.importer.manifests import ManifestError, parse_objects, read_input
from autoscaler.output import add_format_argument, refuse_format_as_path

EXIT_OK, EXIT_INPUT = 0, 2

DESCRIPTION = """\
Read KEDA ScaledObjects and autoscaling/v2 HorizontalPodAutoscalers (one object, a List, or
several YAML documents, as kubectl get -o yaml prints them) and write this project's config:
one target per object, the kafka and prometheus triggers mapped key by key, replicas,
behavior and fallback; equal Kafka clusters and Prometheus servers shared between targets;
secrets never copied. What cannot be mapped is a warning on stderr (and a comment in the
file's header). The result is checked by the config loader before it is written."""

EPILOG = """\
examples:
  kubectl get scaledobject -A -o yaml | autoscaler import - --output autoscaler.yaml
  autoscaler import orders-scaledobject.yaml -o json
  kubectl get hpa -n shop -o yaml | autoscaler import - --kafka-bootstrap-servers kafka:9092
  kubectl get scaledobject,triggerauthentication -n shop -o yaml |
      autoscaler import - --kafka-sasl scram_sha512 --kafka-tls enable

The file is forecast-only (dry_run: true): check it (autoscaler validate), replay it, run it
beside KEDA, and only then delete the ScaledObject or HPA and set dry_run: false."""


def add_parser(commands: Any) -> None:
    """Register ``import`` under the ``autoscaler`` command."""
    parser = commands.add_parser(
        "import",
        help="turn KEDA ScaledObjects and HPAs into a config file (forecast-only)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "file", metavar="FILE", help="the objects, as YAML (or JSON); - reads stdin"
    )
    add_format_argument(parser, what="the config", default="yaml")
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write the config to FILE instead of stdout (only once it is valid)",
    )
    parser.add_argument(
        "--kafka-bootstrap-servers",
        metavar="HOST:PORT,...",
        help="the Kafka cluster an HPA's consumer-lag metric is read from: an HPA does not "
        "say, so without this such a metric is not imported (KEDA triggers name theirs)",
    )
    parser.add_argument(
        "--kafka-sasl",
        choices=("none", "plaintext", "scram_sha256", "scram_sha512"),
        help="what the sasl parameter of a kafka trigger's TriggerAuthentication holds (its "
        "value is in a Secret, which is not read): needed when a TriggerAuthentication in the "
        "input holds sasl, and used for one that is not in the input; a sasl in the "
        "trigger's metadata is read as it is (default: none, and an import that needs it "
        "fails, naming the parameters)",
    )
    parser.add_argument(
        "--kafka-tls",
        choices=("enable", "disable"),
        help="the same for the tls parameter (default: none, as --kafka-sasl)",
    )
    parser.set_defaults(handler=run_command)


def run_command(
    args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """The ``import`` sub-command; returns the exit code."""
    out = stdout or sys.stdout
    mistaken = refuse_format_as_path("--output", args.output)
    if mistaken is not None:
        print(f"import: {mistaken}", file=sys.stderr)
        return EXIT_INPUT
    servers = None
    if args.kafka_bootstrap_servers is not None:
        servers = tuple(s.strip() for s in args.kafka_bootstrap_servers.split(",") if s.strip())
        if not servers:
            print("import: --kafka-bootstrap-servers names no broker", file=sys.stderr)
            return EXIT_INPUT
    try:
        text, shown = read_input(args.file, stdin or sys.stdin)
        objects = parse_objects(text, shown)
    except ManifestError as error:
        print(f"import: {error}", file=sys.stderr)
        return EXIT_INPUT
    options = ImportOptions(
        kafka_bootstrap_servers=servers, kafka_sasl=args.kafka_sasl, kafka_tls=args.kafka_tls
    )
    imported = import_objects(objects, options)
    if imported.problems:  # nothing is written: the other notes can wait for the next try
        for stop in imported.problems:
            print(f"import: {stop}", file=sys.stderr)
        count = len(imported.problems)
        print(
            f"import: nothing written: {count} problem{'' if count == 1 else 's'} above would "
            "make the config connect with less security than KEDA does",
            file=sys.stderr,
        )
        return EXIT_INPUT
    for note in imported.notes:
        print(f"warning: {note}", file=sys.stderr)
    if not imported.sources:
        count = len(objects)
        print(
            f"import: no target: nothing in {shown} could be imported ({count} "
            f"object{'' if count == 1 else 's'} read; the warnings above say why)",
            file=sys.stderr,
        )
        return EXIT_INPUT
    try:
        check(imported)
    except ConfigError as error:
        print(
            f"import: the config would not be valid ({len(error.problems)} "
            f"problem{'' if len(error.problems) == 1 else 's'}, each a value KEDA or the HPA "
            "takes and this project does not):",
            file=sys.stderr,
        )
        for problem in error.problems:
            print(f"  {problem}{_source(problem.path, imported.sources)}", file=sys.stderr)
        return EXIT_INPUT
    written = render(imported, args.format)
    if args.output:
        try:
            _write_atomically(Path(args.output), written)
        except OSError as error:
            print(f"import: --output {args.output}: cannot write it ({error.strerror})",
                  file=sys.stderr)  # fmt: skip
            return EXIT_INPUT
    else:
        out.write(written)
    targets = len(imported.sources)
    where = f" to {args.output}" if args.output else ""
    print(
        f"imported {targets} target{'' if targets == 1 else 's'}{where} from "
        f"{imported.counts()}; forecast-only (dry_run: true) until you switch it off",
        file=sys.stderr,
    )
    return EXIT_OK


def _source(path: str, sources: tuple[str, ...]) -> str:
    """`` (from ScaledObject shop/orders)`` for a problem under ``targets[i]``."""
    match = re.match(r"^targets\[(\d+)\]", path)
    if match is None or int(match.group(1)) >= len(sources):
        return ""
    return f" (from {sources[int(match.group(1))]})"


def _write_atomically(path: Path, text: str) -> None:
    """All of it or nothing: a crash half-way never leaves half a config behind."""
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
