"""``vla-perception`` entry point: dispatches to the sub-command modules.

Each sub-command module exposes ``add_arguments(parser, command)`` and
``run(args) -> int`` (``args.command`` holds the sub-command name). Modules are
imported only when used, so ``vla-perception models ...`` never imports rclpy and
``vla-perception detect ...`` never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> (module, one-line help)
COMMANDS = {
    "models": ("vla_perception.cli.models", "fetch real weights or make the tiny test models"),
    "detect": ("vla_perception.cli.query", "call detector_node's ~/detect and print detections"),
    "classify": ("vla_perception.cli.query", "call clip_node's ~/classify and print scores"),
    "caption": ("vla_perception.cli.query", "call vlm_node's ~/caption and print the caption"),
    "ask": ("vla_perception.cli.query", "call vlm_node's ~/answer with a question"),
    "pick": ("vla_perception.cli.pick", "send a sentence to grasp_orchestrator's ~/pick action"),
    "up": ("vla_perception.cli.up", "start a node graph without ros2 launch"),
    "demo": ("vla_perception.cli.demo", "run the simulated pick demo end to end"),
}


def usage() -> str:
    lines = ["usage: vla-perception COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<9} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines.append("\n'vla-perception COMMAND --help' describes a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command = argv[0]
    module_name, help_text = COMMANDS[command]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"vla-perception {command}", description=help_text)
    module.add_arguments(parser, command)
    args = parser.parse_args(argv[1:])
    args.command = command
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
