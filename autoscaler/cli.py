"""The ``autoscaler`` command: ``validate`` a config file, ``run`` the service, ``replay`` a trace.

Exit codes are part of the interface, for CI jobs and init containers that gate on
``autoscaler validate``: 0 success, 2 a bad config file or bad arguments (argparse's own
code), 1 anything else. A user never sees a traceback unless they ask for one (``--debug``):
a bad file prints every problem, one per line, and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import TextIO

from autoscaler import __version__
from autoscaler.config import AutoscalerConfig, ConfigError, TargetConfig, load_config
from autoscaler.replay import command as replay_command
from autoscaler.tune import command as tune_command

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


def _load(path: str, stderr: TextIO) -> AutoscalerConfig | None:
    """The config, or None after printing every problem with it."""
    try:
        with _cyclic_gc_paused():
            return load_config(path)
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
    config = _load(args.file, sys.stderr)
    if config is None:
        return EXIT_CONFIG
    for target in config.targets:
        print(describe_target(target))
    count = len(config.targets)
    print(f"config OK: {count} target{'' if count == 1 else 's'}")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    # A service that would refuse its config later must refuse it before anything starts.
    config = _load(args.config, sys.stderr)
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
        await service.run(config, stop, config_path=args.config)

    asyncio.run(main())
    return EXIT_OK


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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a config file and say what it would scale",
        description="Check a config file; print what each target would scale, or every "
        "problem found. Exit 0 when valid, 2 when not.",
    )
    validate.add_argument("file", metavar="FILE", help="the YAML config file")
    validate.set_defaults(handler=_validate)

    run = commands.add_parser("run", help="run the autoscaler service until SIGTERM")
    run.add_argument("--config", required=True, metavar="FILE", help="the YAML config file")
    run.set_defaults(handler=_run)

    replay_command.add_parser(commands)
    tune_command.add_parser(commands)
    return parser


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
