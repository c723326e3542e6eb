"""The ``autoscaler`` command: ``validate`` a config file, ``run`` the service, ``replay`` and
``tune`` on history, ``import`` KEDA ScaledObjects and HPAs, print the ``version``.

Exit codes are part of the interface, for CI jobs and init containers that gate on
``autoscaler validate``: 0 success, 2 a bad config file or bad arguments (argparse's own
code), 1 anything else. A user never sees a traceback unless they ask for one (``--debug``):
a bad file prints every problem, one per line, and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import TextIO

from autoscaler import __version__
from autoscaler.build_info import REVISION_ENV, build_info
from autoscaler.commands import importer as import_command
from autoscaler.commands import replay as replay_command
from autoscaler.commands import tune as tune_command
from autoscaler.config import AutoscalerConfig, ConfigError, TargetConfig, load_config
from autoscaler.config.overrides import LOG_LEVELS, RunOverrides
from autoscaler.output import Format, add_format_argument, write_structured

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
"""A bad config file, like a bad command line: the user's input needs fixing."""


def _number(value: float) -> str:
    """``90`` rather than ``90.0``, ``0.9`` as is."""
    return f"{value:g}"


def describe_target(target: TargetConfig) -> str:
    """One line saying what the target would scale, and how: the point of ``validate``."""
    ref = target.scale_target_ref
    replicas = f"replicas {target.min_replicas}..{target.max_replicas}"
    idle = target.idle_replica_count
    if idle is not None:
        replicas += f" (idle {idle} after {_number(target.cooldown_seconds)}s)"
    triggers = []
    for trigger in target.triggers:
        if trigger.type == "kafka_lag":
            topics = "+".join(trigger.topics) or "*"
            triggers.append(
                f"kafka_lag(cluster={trigger.cluster}, group={trigger.consumer_group}, "
                f"topics={topics}, lag_threshold={trigger.lag_threshold})"
            )
        else:
            triggers.append(f"prometheus(server={trigger.server})")
    predictor = target.predictor
    if predictor.model == "none":
        forecast = "predictor none (reactive)"
    else:
        forecast = (
            f"predictor {predictor.model} "
            f"(lead {_number(target.lead_time_seconds)}s, q{_number(predictor.quantile)})"
        )
    return (
        f"{target.name}: {ref.kind} {target.namespace}/{ref.name}, {replicas}, "
        f"triggers {', '.join(triggers)}, {forecast}, "
        f"SLO {_number(target.slo.max_lag_seconds)}s, "
        f"{'dry-run' if target.dry_run else 'live'}"
    )


def _load(
    path: str, stderr: TextIO, load: Callable[[str], AutoscalerConfig] | None = None
) -> AutoscalerConfig | None:
    """The config (``load``, by default ``load_config`` as it is at the call), or None
    after printing every problem with it."""
    try:
        with _cyclic_gc_paused():
            return (load or load_config)(path)
    except ConfigError as error:
        print(error.summary(), file=stderr)
        for problem in error.problems:
            print(f"  {problem}", file=stderr)
        return None


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the command loads its config.

    A load allocates millions of objects that all stay alive until it ends (nodes, data,
    models), and each collection of the oldest generation walks every one of them for no
    garbage: 40% of the CPU of validating 50,000 targets. Reference counting still frees
    what a load drops as it goes. Here, at the start of a command, and not in
    ``load_config``: a library call should not switch a process-wide setting, and the
    service reloads in a worker thread while its event loop runs on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _validate(args: argparse.Namespace) -> int:
    if args.format is not None:
        return _validate_structured(args.file, args.format)
    config = _load(args.file, sys.stderr)
    if config is None:
        return EXIT_CONFIG
    for target in config.targets:
        print(describe_target(target))
    count = len(config.targets)
    print(f"config OK: {count} target{'' if count == 1 else 's'}")
    return EXIT_OK


def _validate_structured(path: str, form: Format) -> int:
    """``validate -o json|yaml``: the normalised config (every default filled in, secrets
    masked) or every problem, as data on stdout; the exit code as for text."""
    try:
        config = load_config(path)
    except ConfigError as error:
        problems = [
            {"path": p.path, "message": p.message, "line": p.line, "column": p.column}
            for p in error.problems
        ]
        write_structured({"valid": False, "source": path, "problems": problems}, form, sys.stdout)
        return EXIT_CONFIG
    document = {"valid": True, "source": path, "config": config.model_dump(mode="json")}
    write_structured(document, form, sys.stdout)
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    overrides = RunOverrides(
        kubeconfig_path=args.kubeconfig,
        context=args.context,
        log_level=args.log_level,
        dry_run=args.dry_run,
    )
    if args.kubeconfig is not None and not os.path.isfile(args.kubeconfig):
        print(f"run: --kubeconfig {args.kubeconfig}: no such file", file=sys.stderr)
        return EXIT_CONFIG

    def load(path: str) -> AutoscalerConfig:
        return overrides.apply(load_config(path), path)

    # A service that would refuse its config later must refuse it before anything starts.
    config = _load(args.config, sys.stderr, load)
    if config is None:
        return EXIT_CONFIG
    import asyncio

    from autoscaler.live import service
    from autoscaler.live.supervisor import install_signal_handlers
    from autoscaler.logs import configure_logging

    configure_logging(config.logging.format, config.logging.level)

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await service.run(config, stop, config_path=args.config, load=load)

    asyncio.run(main())
    return EXIT_OK


RUN_DESCRIPTION = """\
Run the autoscaler service. Each target is one supervised task that polls its triggers
(Kafka consumer-group lag, Prometheus queries) every poll_interval_seconds, forecasts the
load one pod start-up ahead, decides the replica count (the HPA's behavior policies and
KEDA's activation and idle rules) and patches the workload's scale subresource: only for
targets with dry_run false, only while this instance holds the leader Lease, never while the
workload is paused or another autoscaler (HPA, ScaledObject) scales it. Every decision is
one scaling_decision log line. The config file is re-read when it changes (every 5 s): a
valid file is applied target by target, an invalid one is rejected and the running config
kept; the flags below apply to every reload too."""

RUN_EPILOG = """\
endpoints:
  :8080/healthz   liveness: ok while the process and its event loop run
  :8080/readyz    readiness: 200 once built and while every trigger and target is within
                  its failure budget, else 503 naming them
  :8080/status    JSON per target: observations, forecast, decision, why not patched
  :9090/metrics   Prometheus metrics (autoscaler_*)
  (the ports are server.health_port and server.metrics_port)

signals:
  SIGTERM, SIGINT  in-flight polls and patches finish, the Lease is released, the process
                   exits within a few seconds (exit code 0)

exit codes: 0 stopped by a signal, 2 a bad config or bad arguments, 1 anything else
(e.g. no Kubernetes credentials), printed as one line."""


def _add_run_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="run the autoscaler service until SIGTERM",
        description=RUN_DESCRIPTION,
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", required=True, metavar="FILE", help="the YAML config file")
    kube = run.add_argument_group("overrides of the config file (kept over reloads)")
    kube.add_argument(
        "--kubeconfig",
        metavar="PATH",
        type=_non_empty,
        help="the kubeconfig to use (instead of kubernetes.kubeconfig_path, $KUBECONFIG or "
        "~/.kube/config); implies kubernetes.mode kubeconfig",
    )
    kube.add_argument(
        "--context",
        metavar="NAME",
        type=_non_empty,
        help="the kubeconfig context to use (instead of kubernetes.context or the current "
        "context); implies kubernetes.mode kubeconfig",
    )
    kube.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="instead of logging.level",
    )
    kube.add_argument(
        "--dry-run",
        action="store_true",
        help="forecast-only for every target, whatever dry_run says in the file (there is "
        "no flag for the other way: switching dry_run off is done in the file)",
    )
    run.set_defaults(handler=_run)


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command line, with one sub-command per job."""
    parser = argparse.ArgumentParser(
        prog="autoscaler",
        description="Predictive autoscaler for Kafka consumers on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show a traceback on unexpected errors"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to do (COMMAND --help)"
    )

    validate = commands.add_parser(
        "validate",
        help="check a config file and say what it would scale",
        description="Check a config file; print what each target would scale, or every "
        "problem found. Exit 0 when valid, 2 when not.",
    )
    validate.add_argument("file", metavar="FILE", help="the YAML config file")
    add_format_argument(
        validate,
        what="the normalised config (every default filled in, secrets masked) or the list "
        "of problems",
    )
    validate.set_defaults(handler=_validate)

    _add_run_parser(commands)

    replay_command.add_parser(commands)
    tune_command.add_parser(commands)
    import_command.add_parser(commands)

    version = commands.add_parser(
        "version",
        help="print the version and the git commit of this build",
        description="Print the package version and the git commit it was built from: "
        f"${REVISION_ENV} (the image sets it from docker build --build-arg REVISION), else "
        "git when run from a checkout, else unknown.",
    )
    add_format_argument(version, what="the version, the commit and where the commit came from")
    version.set_defaults(handler=_version)
    return parser


def _version(args: argparse.Namespace) -> int:
    info = build_info()
    if args.format is not None:
        write_structured(info.data(), args.format, sys.stdout)
    else:
        print(info.text())
    return EXIT_OK


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``autoscaler`` console script and ``python -m autoscaler``."""
    parser = build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and not getattr(args, "accepts_extra", False):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        debug = args.debug
        handler = args.handler
        code: int = handler(args)
        return code
    except SystemExit as exit_:  # argparse: --help, --version, usage errors (2)
        return _exit_code(exit_.code)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if debug:
            traceback.print_exc()
        reason = " ".join(str(error).split()) or type(error).__name__
        print(f"error: {reason}", file=sys.stderr)
        return EXIT_FAILURE
