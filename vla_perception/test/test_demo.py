"""``vla-perception demo`` end to end on a machine without real weights (what CI is).

The demo runs as a user runs it: its own process, starting sim_camera, detector_node, clip_node,
pose_node and grasp_orchestrator through the bringup supervisor. An empty Hugging Face cache
makes the "no real weights" decision certain, so this is the sim mode: detector_node's simulation
backend (the simulator's boxes with noise and distractors, not a model) and the tiny random-weight
CLIP re-ranking run through their real services; localising, planning and execution are
production code.
The picture is checked against the simulator's own ground truth, rendered here
independently of the demo.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vla_perception.bringup.supervisor import process_running
from vla_perception.core.projection import APPROACH_COLOUR, PATH_COLOUR

SRC_DIR = Path(__file__).resolve().parents[1]
FEEDBACK_LINE = re.compile(r"^\s+\[\s*(?P<elapsed>\d+\.\d+) s\] (?P<stage>\S+)")
HIGHLIGHT = (255, 255, 255)  # draw_detections' frame around the chosen detection


def run_demo(folder: Path, *args: str):
    """Run the demo as its own process with an empty Hugging Face cache; (completed run, picture, log)."""
    empty_cache = folder / "hf_cache"
    empty_cache.mkdir()
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               ROS_DOMAIN_ID=str((int(os.environ["ROS_DOMAIN_ID"]) + 41) % 100 + 1),  # its own graph
               HF_HUB_CACHE=str(empty_cache), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(SRC_DIR), os.environ.get("PYTHONPATH", "")]))
    output = folder / "picture" / "demo.png"
    run = subprocess.run([sys.executable, "-m", "vla_perception.cli", "demo", "--output", str(output), *args],
                         capture_output=True, text=True, env=env, timeout=420)
    return run, output, output.with_suffix(".log")


def started_pids(log: Path) -> dict[str, int]:
    found = re.findall(r"\[supervisor\] (\w+) started, pid (\d+)", log.read_text())
    return {name: int(pid) for name, pid in found}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def mug_box():
    """Render the simulator's default scene here; return the red mug's and the duck's 2D boxes."""
    from vla_perception.sim.scene import TabletopScene

    with TabletopScene() as scene:
        frame = scene.render()
        return scene.truth("red_mug", frame).box, scene.truth("yellow_duck", frame).box


def test_demo_lifts_the_mug_and_exits_0(demo_run):
    run, _, _ = demo_run
    assert run.returncode == 0, run.stdout + run.stderr
    assert "demo: 'red mug' LIFTED" in run.stdout
    assert re.search(r"executor: 'red_mug' lifted \(\d+ mm\)", run.stdout)
    assert re.search(r"every stage used the snapshot stamped \d+\.\d{9}", run.stdout)
    rose = re.search(r"ground truth: 'red_mug' centre z (\d\.\d+) m -> (\d\.\d+) m", run.stdout)
    assert rose and float(rose[2]) - float(rose[1]) > 0.05, run.stdout


def test_demo_says_which_stages_ran_on_real_models_and_which_did_not(demo_run):
    run, _, _ = demo_run
    out = run.stdout
    assert "real model weights are not available here" in out
    assert "`vla-perception models fetch`" in out
    assert "detecting: detector_node's simulation backend (no real detector weights" in out
    assert "re-ranking: clip_node with the tiny random-weight CLIP" in out
    assert "grounding-dino-tiny is not in the Hugging Face cache" in out
    assert "localising/planning/execution: production code" in out
    assert "tiny profile" in out


def test_demo_prints_each_stage_in_order_with_timings(demo_run):
    run, _, _ = demo_run
    matches = map(FEEDBACK_LINE.match, run.stdout.splitlines())
    printed = [(m["stage"], float(m["elapsed"])) for m in matches if m]
    stages = list(dict.fromkeys(stage for stage, _ in printed))
    assert stages == ["snapshot", "parsing", "detecting", "re-ranking", "localising", "planning", "executing"], \
        run.stdout
    assert [t for _, t in printed] == sorted(t for _, t in printed)
    timings = re.search(r"stage timings: (.*) \(total (\d+\.\d+) s\)", run.stdout)
    assert timings, run.stdout
    assert [part.split()[0] for part in timings[1].split(", ")] == stages
    assert re.search(r"planner embedded in \d+\.\d+ s, (\d+) \+ (\d+) trajectory points", run.stdout)


def colour_fraction(image: np.ndarray, colour, region) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    patch = image[max(y0, 0):y1, max(x0, 0):x1]
    return float(np.all(patch == np.array(colour, np.uint8), axis=-1).mean())


def ring(box, inner: float, outer: float):
    """Regions above, below, left and right of a box, from ``inner`` to ``outer`` pixels outside it."""
    return [(box.x_min - outer, box.y_min - outer, box.x_max + outer, box.y_min - inner),
            (box.x_min - outer, box.y_max + inner, box.x_max + outer, box.y_max + outer),
            (box.x_min - outer, box.y_min - outer, box.x_min - inner, box.y_max + outer),
            (box.x_max + inner, box.y_min - outer, box.x_max + outer, box.y_max + outer)]


def test_demo_picture_highlights_the_mug_and_draws_the_plan(demo_run, mug_box):
    run, output, _ = demo_run
    assert output.is_file(), run.stdout
    picture = np.asarray(Image.open(output).convert("RGB"))
    assert picture.shape[0] == 480 and picture.shape[1] in (640, 1280)
    before = picture[:, :640]
    assert before.std() > 20  # a rendered scene, not a blank canvas
    mug, duck = mug_box
    # the white highlight frame is drawn just outside the mug's box (not checked on top: the label covers it)
    mug_bands = [colour_fraction(before, HIGHLIGHT, band) for band in ring(mug, 0, 4)]
    assert min(mug_bands[1:]) > 0.4, mug_bands
    assert max(colour_fraction(before, HIGHLIGHT, band) for band in ring(duck, 0, 4)) < 0.05
    # the approach arrow ends at the mug; the planned path is drawn
    near_mug = (mug.x_min - 40, mug.y_min - 60, mug.x_max + 40, mug.y_max + 20)
    assert colour_fraction(before, APPROACH_COLOUR, near_mug) > 0.002
    assert np.all(before == np.array(PATH_COLOUR, np.uint8), axis=-1).sum() > 100


def test_demo_leaves_no_process_behind(demo_run):
    run, _, log = demo_run
    assert "no process left" in run.stdout
    started = started_pids(log)
    assert set(started) == {"sim_camera", "detector_node", "clip_node", "pose_node", "grasp_orchestrator"}
    assert [name for name, pid in started.items() if process_running(pid)] == []


def test_a_failed_pick_exits_1_still_draws_the_scene_and_stops_every_node(tmp_path):
    run, output, log = run_demo(tmp_path, "pick up the purple giraffe")
    assert run.returncode == 1, run.stdout + run.stderr
    # the simulated detector's distractor boxes are all it finds, and all below the threshold
    assert "the pick failed at detecting: detecting: no 'purple giraffe' above threshold 0.35; best was " \
           "'purple giraffe' at 0." in run.stdout
    assert "LIFTED" not in run.stdout
    picture = np.asarray(Image.open(output).convert("RGB"))
    assert picture.std() > 20
    assert np.all(picture == np.array(APPROACH_COLOUR, np.uint8), axis=-1).sum() == 0  # no plan, no approach
    started = started_pids(log)
    assert len(started) == 5 and not any(process_running(pid) for pid in started.values())


def fake_cached_repo(cache, repo: str, files: list[str]) -> None:
    """Lay out a Hugging Face cache entry the way huggingface_hub writes it (no weights inside)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in files:
        (snapshot / name).write_text("{}")


def test_mode_follows_the_weights_in_the_cache(tmp_path, monkeypatch):
    """The demo's decision only looks at the cache: empty -> tiny; detector -> real; + CLIP -> re-ranking."""
    from vla_perception.cli.demo import DemoError, choose_mode

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    tiny = choose_mode("auto")
    assert not tiny.real
    assert set(tiny.nodes) == {"sim_camera", "pose_node", "grasp_orchestrator", "detector_node", "clip_node"}
    assert tiny.parameters["detector_node"]["backend"] == "sim"
    assert "detection_source" not in tiny.parameters["grasp_orchestrator"]  # its default: the detector
    assert "grounding-dino-tiny" in tiny.missing
    with pytest.raises(DemoError, match="models fetch"):
        choose_mode("default")
    fake_cached_repo(tmp_path, "IDEA-Research/grounding-dino-tiny", ["config.json"])
    assert not choose_mode("auto").real  # a config without weights is not a model
    fake_cached_repo(tmp_path, "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", ["open_clip_config.json",
                                                                        "open_clip_model.safetensors"])
    (tmp_path / "models--IDEA-Research--grounding-dino-tiny" / "snapshots" / ("0" * 40) /
     "model.safetensors").write_text("{}")
    real = choose_mode("auto")
    assert real.real and real.profile == "default"
    assert set(real.nodes) == {"sim_camera", "pose_node", "grasp_orchestrator", "detector_node", "clip_node"}
    assert real.parameters["grasp_orchestrator"] == {"rerank": True}
    assert real.parameters["detector_node"]["stream"] is False
    assert any(note.startswith("detecting: Grounding DINO, real weights") for note in real.notes)
    forced = choose_mode("tiny")
    assert not forced.real and forced.missing == "" and "tiny profile asked for" in forced.notes[0]

