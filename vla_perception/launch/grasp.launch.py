"""Bringup 'grasp' of config/graph.yaml: perception + grasp_orchestrator.

    ros2 launch vla_perception grasp.launch.py [profile:=tiny] [device:=cuda]
        [nodes:=...] [namespace:=...] [activation:=autostart|events|manual] [respawn:=true] ...

Every argument of graph.yaml is a launch argument (`ros2 launch ... --show-args` lists them).
Without launch_ros, `vla-perception up grasp` starts the same nodes.
"""
from vla_perception.bringup.ros_launch import bringup_launch_description


def generate_launch_description():
    return bringup_launch_description("grasp")
