"""The graph.yaml loader (vla_perception.bringup.graph) and the fallback's command lines (ROS-free).

Expected node sets, names and topics are written out here from the bringup issue's node
contract, not read from graph.yaml.
"""
from pathlib import Path

import pytest
import yaml

from vla_perception.bringup.commands import format_parameter, ros_arguments
from vla_perception.bringup.graph import (
    GraphError,
    ParamsFile,
    load_graph,
    normalize_namespace,
    resolve_bringup,
    resolve_name,
    resolved_remappings,
)

PERCEPTION = ["clip_node", "detector_node", "vlm_node", "pose_node"]
MODEL_NODES = ["clip_node", "detector_node", "vlm_node", "pose_node"]  # pose_node: CLIPSeg


@pytest.fixture(scope="module")
def graph():
    return load_graph()


def by_name(specs):
    return {spec.name: spec for spec in specs}


@pytest.mark.parametrize("bringup, expected", [
    ("perception", PERCEPTION),
    ("grasp", PERCEPTION + ["grasp_orchestrator"]),
    ("sim_demo", PERCEPTION + ["grasp_orchestrator", "sim_camera", "tracker_node"]),
])
def test_bringups_expand_their_includes_in_order(graph, bringup, expected):
    assert [spec.name for spec in resolve_bringup(graph, bringup)] == expected


@pytest.mark.parametrize("bringup, tracking, started", [
    ("perception", "", False), ("grasp", "", False), ("sim_demo", "", True),
    ("perception", "true", True), ("sim_demo", "false", False),
])
def test_tracking_is_off_in_perception_and_on_in_sim_demo_unless_asked(graph, bringup, tracking, started):
    names = [spec.name for spec in resolve_bringup(graph, bringup, {"tracking": tracking})]
    assert ("tracker_node" in names) is started
    if started:
        assert resolved_remappings(by_name(resolve_bringup(graph, bringup, {"tracking": tracking}))["tracker_node"]) \
            == {"/image": "/camera/color/image_raw", "/detections": "/detector_node/detections",
                "/camera_info": "/camera/color/camera_info"}


def test_pose_node_can_localise_the_tracks_instead_of_the_detections(graph):
    specs = by_name(resolve_bringup(graph, "sim_demo", {"pose_detections": "tracker_node/tracks",
                                                        "namespace": "robot1"}))
    assert resolved_remappings(specs["pose_node"])["/robot1/detections"] == "/robot1/tracker_node/tracks"


def test_defaults_wire_the_sim_camera_topics_into_every_consumer(graph):
    specs = by_name(resolve_bringup(graph, "sim_demo"))
    for name in ("clip_node", "detector_node", "vlm_node"):
        assert resolved_remappings(specs[name]) == {"/image": "/camera/color/image_raw"}
    assert resolved_remappings(specs["pose_node"]) == {
        "/detections": "/detector_node/detections",
        "/depth": "/camera/depth/image_raw",
        "/camera_info": "/camera/color/camera_info",
        "/image": "/camera/color/image_raw",  # for mask_source:=clipseg
    }
    assert resolved_remappings(specs["sim_camera"]) == {
        "/image": "/camera/color/image_raw",
        "/depth": "/camera/depth/image_raw",
        "/camera_info": "/camera/color/camera_info",
    }
    assert resolved_remappings(specs["grasp_orchestrator"]) == resolved_remappings(specs["sim_camera"])


def test_namespace_moves_the_graph_but_not_the_camera(graph):
    specs = by_name(resolve_bringup(graph, "grasp", {"namespace": "robot1/"}))
    assert {spec.namespace for spec in specs.values()} == {"/robot1"}
    assert specs["detector_node"].fully_qualified_name == "/robot1/detector_node"
    assert resolved_remappings(specs["pose_node"])["/robot1/detections"] == "/robot1/detector_node/detections"
    assert resolved_remappings(specs["pose_node"])["/robot1/depth"] == "/camera/depth/image_raw"
    assert resolved_remappings(specs["grasp_orchestrator"])["/robot1/depth"] == "/camera/depth/image_raw"


def test_profile_and_device_reach_only_the_model_nodes(graph):
    overrides = {"profile": "tiny", "device": "cuda:1", "planner": "embedded"}
    specs = by_name(resolve_bringup(graph, "grasp", overrides))
    for name in MODEL_NODES:
        assert specs[name].parameters["profile"] == "tiny"
        assert specs[name].parameters["device"] == "cuda:1"
    assert "profile" not in specs["grasp_orchestrator"].parameters
    assert specs["grasp_orchestrator"].parameters["planner"] == "embedded"


def test_empty_model_arguments_leave_the_choice_to_the_node_yaml(graph):
    specs = by_name(resolve_bringup(graph, "grasp"))
    for name in MODEL_NODES:
        assert "profile" not in specs[name].parameters and "device" not in specs[name].parameters
    assert "planner" not in specs["grasp_orchestrator"].parameters
    specs = by_name(resolve_bringup(graph, "grasp", {"device": "cpu"}))
    assert specs["vlm_node"].parameters["device"] == "cpu" and "profile" not in specs["vlm_node"].parameters


@pytest.mark.parametrize("activation, autostart", [("autostart", True), ("events", False), ("manual", False)])
def test_activation_sets_autostart_on_lifecycle_nodes_only(graph, activation, autostart):
    specs = by_name(resolve_bringup(graph, "sim_demo", {"activation": activation}))
    for name in PERCEPTION:
        assert specs[name].lifecycle and specs[name].parameters["autostart"] is autostart
    for name in ("grasp_orchestrator", "sim_camera"):
        assert not specs[name].lifecycle and "autostart" not in specs[name].parameters


def test_nodes_argument_selects_a_subset_in_graph_order(graph):
    specs = resolve_bringup(graph, "sim_demo", {"nodes": " sim_camera, clip_node "})
    assert [spec.name for spec in specs] == ["clip_node", "sim_camera"]


@pytest.mark.parametrize("bringup, overrides, message", [
    ("perception", {"nodes": "sim_camera"}, "sim_camera not in bringup 'perception'"),
    ("perception", {"profil": "tiny"}, "unknown argument(s) profil"),
    ("perception", {"profile": "huge"}, "choose one of '', 'default', 'tiny'"),
    ("perception", {"activation": "later"}, "choose one of 'autostart', 'events', 'manual'"),
    ("everything", {}, "unknown bringup 'everything'"),
])
def test_bad_requests_are_errors_that_say_what_is_allowed(graph, bringup, overrides, message):
    with pytest.raises(GraphError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_bringup(graph, bringup, overrides)


def test_respawn_arguments(graph):
    assert not any(spec.respawn for spec in resolve_bringup(graph, "perception"))
    specs = resolve_bringup(graph, "perception", {"respawn": "true", "respawn_delay": "0.5"})
    assert all(spec.respawn and spec.respawn_delay == 0.5 for spec in specs)


def write_graph(tmp_path, graph: dict) -> Path:
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(graph))
    return path


def test_include_cycles_and_undeclared_arguments_are_errors(tmp_path):
    node = {"executable": "a", "remappings": {"image": "$(arg camera)"}}
    cyclic = {"arguments": {}, "nodes": {"a": node},
              "bringups": {"x": {"include": ["y"]}, "y": {"include": ["x"], "nodes": ["a"]}}}
    with pytest.raises(GraphError, match="includes itself"):
        resolve_bringup(load_graph(write_graph(tmp_path, cyclic)), "x")
    undeclared = {"arguments": {}, "nodes": {"a": node}, "bringups": {"x": {"nodes": ["a"]}}}
    with pytest.raises(GraphError, match="undeclared argument 'camera'"):
        resolve_bringup(load_graph(write_graph(tmp_path, undeclared)), "x")


@pytest.fixture
def small_graph(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"shared": 1, "rate": 1.0}},
        "a_node": {"ros__parameters": {"rate": 5.0, "labels": ["cup", "duck"]}},
        "other_node": {"ros__parameters": {"rate": 99.0}},
    }))
    user_file = tmp_path / "user.yaml"
    user_file.write_text("{}")
    graph = {
        "arguments": {"params_file": {"default": ""}, "namespace": {"default": ""},
                      "mode": {"default": "x y"}},
        "nodes": {"a_node": {"executable": "a_exe", "lifecycle": False, "params_files": ["a.yaml"],
                             "parameters": {"mode": "$(arg mode)", "flag": True},
                             "remappings": {"in": "/camera/in", "~/out": "result"}}},
        "bringups": {"only": {"nodes": ["a_node"]}},
    }
    return load_graph(write_graph(tmp_path, graph)), user_file


def test_params_files_are_read_for_the_node_and_come_before_overrides(small_graph):
    graph, user_file = small_graph
    (spec,) = resolve_bringup(graph, "only", {"params_file": str(user_file), "namespace": "r1"})
    assert spec.parameter_sources() == [
        {"shared": 1, "rate": 5.0, "labels": ["cup", "duck"]},  # own section over /**, not other_node's
        str(user_file),
        {"mode": "x y", "flag": True},
    ]
    assert spec.module == "vla_perception.nodes.a_exe"


def test_fallback_command_rekeys_defaults_to_the_real_name_and_puts_overrides_last(small_graph, tmp_path):
    graph, user_file = small_graph
    (spec,) = resolve_bringup(graph, "only", {"params_file": str(user_file), "namespace": "r1"})
    args = ros_arguments(spec, tmp_path)
    assert args[:5] == ["--ros-args", "-r", "__node:=a_node", "-r", "__ns:=/r1"]
    files = [args[i + 1] for i, arg in enumerate(args) if arg == "--params-file"]
    assert yaml.safe_load(Path(files[0]).read_text()) == {
        "/r1/a_node": {"ros__parameters": {"shared": 1, "rate": 5.0, "labels": ["cup", "duck"]}}}
    assert files[1] == str(user_file)
    last_file = max(i for i, arg in enumerate(args) if arg == "--params-file")
    assert min(i for i, arg in enumerate(args) if arg == "-p") > last_file
    assert "flag:=true" in args and "in:=/camera/in" in args and "~/out:=result" in args


@pytest.mark.parametrize("value", ["", "true", "1", "cup . duck", "a: b", "#x", "auto", "cuda:0", True, 3,
                                   2.5, ["cup", "red mug"], "[x]"])
def test_parameter_values_read_back_as_themselves_through_yaml(value):
    # rcl parses `-p name:=VALUE` as YAML: what we write must load back to the same value and type.
    loaded = yaml.safe_load(format_parameter(value))
    assert loaded == value and type(loaded) is type(value)


def test_name_helpers():
    assert normalize_namespace("", "") == ""
    assert normalize_namespace("/a/", "b") == "/a/b"
    assert resolve_name("x", "", "n") == "/x"
    assert resolve_name("~/x", "/ns", "n") == "/ns/n/x"
    assert resolve_name("/x", "/ns", "n") == "/x"


def test_params_file_without_own_section_gives_only_wildcards(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"a": 1}}}))
    assert ParamsFile(str(path), "missing_node").parameters() == {"a": 1}
