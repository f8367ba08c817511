"""Bringup of the node graph: graph.yaml loader (graph), process commands and supervision (ROS-free)."""
