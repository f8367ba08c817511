"""Task planning: rule patterns, step checking, and the VLM planner's JSON answers."""
import json

import pytest

from vla_perception.core.task_planning import (
    STEPS_SCHEMA, Step, TaskPlanningError, check_steps, plan_by_rules, plan_task, steps_from_json)

SCENE = ["red mug", "green cube", "yellow duck", "blue box", "tray", "red cube"]


def triples(steps):
    return [(s.action, s.object, s.target) for s in steps]


@pytest.mark.parametrize("instruction", ["put the duck and the cube in the tray",
                                         "Place the duck & the cube into the tray.",
                                         "please move the duck, and the cube onto the tray"])
def test_put_x_and_y_in_z(instruction):
    assert triples(plan_by_rules(instruction, SCENE)) == [
        ("pick", "duck", ""), ("place", "duck", "tray"), ("verify", "duck", "tray"),
        ("pick", "cube", ""), ("place", "cube", "tray"), ("verify", "cube", "tray")]


def test_clear_the_red_things_goes_to_each_red_object_and_the_container_in_view():
    steps = plan_by_rules("clear the red things off the table", SCENE)
    assert [s.object for s in steps if s.action == "pick"] == ["red mug", "red cube"]
    assert {s.target for s in steps if s.action != "pick"} == {"tray"}
    cubes = plan_by_rules("clear the cubes from the table into the blue box", SCENE)
    assert [s.object for s in cubes if s.action == "pick"] == ["green cube", "red cube"]
    assert {s.target for s in cubes if s.action != "pick"} == {"blue box"}


def test_clear_fails_clearly_without_a_container_or_a_match():
    with pytest.raises(TaskPlanningError, match="needs a container"):
        plan_by_rules("clear the red things off the table", ["red mug", "red cube"])
    with pytest.raises(TaskPlanningError, match="nothing in the scene matches 'the purple things'"):
        plan_by_rules("clear the purple things off the table", SCENE)


def test_unknown_patterns_are_left_to_the_vlm_or_refused():
    assert plan_by_rules("tidy up", SCENE) is None
    with pytest.raises(TaskPlanningError, match="rules_then_vlm"):
        plan_task("tidy up", SCENE, "rules")
    with pytest.raises(TaskPlanningError, match="empty"):
        plan_task("  ", SCENE, "rules")


@pytest.mark.parametrize("steps, match", [
    ([], "no steps"),
    ([Step("place", "duck", "tray")], "not in the gripper"),
    ([Step("pick", "duck"), Step("pick", "cube")], "still holds 'duck'"),
    ([Step("pick", "duck")], "ends holding 'duck'"),
    ([Step("pick", "duck"), Step("place", "duck", "")], "say where"),
    ([Step("pick", "tray"), Step("place", "tray", "tray")], "in itself"),
    ([Step("verify", "duck", "tray")], "placed earlier"),
    ([Step("throw", "duck")], "action must be one of"),
])
def test_plans_that_cannot_be_executed_in_order_are_refused(steps, match):
    with pytest.raises(TaskPlanningError, match=match):
        check_steps(steps)


def test_the_vlm_planner_is_asked_with_the_schema_and_its_answer_checked():
    asked = []

    def ask(prompt, schema):
        asked.append((prompt, schema))
        return json.dumps({"steps": [{"action": "pick", "object": "yellow duck"},
                                     {"action": "place", "object": "yellow duck", "target": "table"}]})

    steps, planner = plan_task("tidy up", SCENE, "rules_then_vlm", ask)
    assert planner == "vlm" and triples(steps) == [("pick", "yellow duck", ""), ("place", "yellow duck", "table")]
    assert asked[0][1] == STEPS_SCHEMA and "tidy up" in asked[0][0] and "yellow duck" in asked[0][0]
    rules_steps, rules_planner = plan_task("put the duck in the tray", SCENE, "rules_then_vlm", ask)
    assert rules_planner == "rules" and len(asked) == 1


@pytest.mark.parametrize("answer, match", [
    ("pick the duck then place it", "not JSON"),
    ('{"steps": [{"action": "teleport", "object": "duck"}]}', "is not one of"),
    ('{"steps": [{"action": "pick", "object": "duck"}]}', "ends holding"),
    ('{"plan": []}', "missing required property"),
])
def test_unusable_vlm_plans_fail_clearly(answer, match):
    with pytest.raises(TaskPlanningError, match=match):
        steps_from_json(answer)
