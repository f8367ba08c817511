"""What the bench scripts share: a description of the machine and writing a report that keeps its notes."""
from __future__ import annotations

import json
import os
import platform
import random
import sys
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[1]
NOTES_HEADING = "## Notes"  # a hand-written section at the end of a report, kept by --write


def machine() -> str:
    """CPU model, core count, OS and Python: the context every benchmark figure needs."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def write_keeping_notes(path: Path, report: str) -> None:
    """Write ``report`` to ``path``, keeping a hand-written '## Notes' section already at its end."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    notes = old[old.index(NOTES_HEADING):] if NOTES_HEADING in old else ""
    path.write_text(report + ("\n" + notes if notes else ""))


def print_and_write(report: str, path: str | None) -> None:
    """Print ``report``; with ``path`` (the benches' --write) also write it there, keeping its notes."""
    print("\n" + report)
    if path:
        write_keeping_notes(Path(path), report)


def use_loopback_ros() -> None:
    """The package from this tree, then the project's one ROS environment (loopback DDS, a domain of its own)."""
    sys.path[:0] = [str(REPO_DIR / "vla_perception"), str(REPO_DIR / "vla_perception" / "test")]
    from vla_perception.bringup.environment import ros_environment

    ros_environment(default_domain=str(random.randint(30, 99)))


def write_full_size_clip(directory: Path) -> Path:
    """Save a random-weight ViT-B/32 as open_clip_config.json + open_clip_model.safetensors (local-dir)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": open_clip.get_model_config("ViT-B-32"), "preprocess_cfg": {}}
    (directory / "open_clip_config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              str(directory / "open_clip_model.safetensors"))
    return directory
