"""Thin rclpy nodes: parameters, topics and services around the core."""
