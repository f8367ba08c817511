"""Test peer: a GetGroundTruth service at ``never/ground_truth`` that never answers.

Started as its own process by test_faults.py and killed with SIGKILL while the
orchestrator waits on it, the way a real node dies mid-call (crash, OOM kill).
"""
import threading

import rclpy
from rclpy.node import Node

from vla_perception_interfaces.srv import GetGroundTruth


def main():
    rclpy.init()
    node = Node("never_answering")
    node.create_service(GetGroundTruth, "never/ground_truth", lambda request, response: threading.Event().wait())
    rclpy.spin(node)


if __name__ == "__main__":
    main()
