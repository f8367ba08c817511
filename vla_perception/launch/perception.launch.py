"""Bringup 'perception' of config/graph.yaml: clip_node, detector_node, vlm_node, pose_node.

    ros2 launch vla_perception perception.launch.py [profile:=tiny] [device:=cuda]
        [nodes:=...] [namespace:=...] [activation:=autostart|events|manual] [respawn:=true] ...

Every argument of graph.yaml is a launch argument (`ros2 launch ... --show-args` lists them).
Without launch_ros, `vla-perception up perception` starts the same nodes.
"""
from vla_perception.bringup.ros_launch import bringup_launch_description


def generate_launch_description():
    return bringup_launch_description("perception")
