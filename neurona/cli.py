"""The `neurona` command: a dispatcher over subcommands. Each subcommand lives in the package it
belongs to, as a module with `HELP`, `add_arguments(parser)` and `run(args) -> exit status`;
`SUBCOMMANDS` maps its name to that module, imported only when the parser is built, so a missing
optional extra breaks only its own subcommand. `neurona serve ...` runs the model server.
May import: argparse, importlib, neurona.serving, neurona.pipeline, neurona.rl (their `command` modules, lazily).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# name -> module providing HELP, add_arguments(parser), run(args)
SUBCOMMANDS = {"serve": "neurona.serving.command", "pipeline": "neurona.pipeline.command",
               "rl": "neurona.rl.command"}


def main(argv=None) -> int:
    """Run `neurona <subcommand> ...`; returns the exit status.

    >>> main(["--help"])  # doctest: +ELLIPSIS
    usage: neurona ...
    0
    """
    parser = argparse.ArgumentParser(prog="neurona", description="neurona command-line tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {}
    for name, module in SUBCOMMANDS.items():
        try:
            commands[name] = importlib.import_module(module)
        except ImportError as e:  # its extra is not installed: say so when that command is asked for
            sub.add_parser(name, help=f"(unavailable: {e})")
            continue
        commands[name].add_arguments(sub.add_parser(name, help=commands[name].HELP,
                                                    description=commands[name].HELP))
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help and usage errors: a status, not an exception, for callers
        return int(e.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command not in commands:
        print(f"neurona {args.command}: unavailable; install its extra (e.g. pip install -e '.[serving]' in a neurona checkout)",
              file=sys.stderr)
        return 2
    return commands[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
