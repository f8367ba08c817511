"""Test peer: republishes every vla_perception_interfaces message and answers one service.

Started as a separate process by test_interfaces_over_dds.py; for each message type T it
subscribes to ``echo/in/T`` and republishes the same message on ``echo/out/T``. The
``echo/detect`` service answers with the request's prompt and image size, so the test
sees the request's fields really crossed the process boundary.
"""
import rclpy
from rclpy.node import Node

from vla_perception_interfaces import msg as interface_msgs
from vla_perception_interfaces.srv import Detect

MESSAGE_TYPES = [
    "BoundingBox2D", "Detection2D", "Detection2DArray", "Classification",
    "Object3D", "Object3DArray", "GraspCandidate", "GraspPlan",
]


class InterfaceEcho(Node):
    def __init__(self):
        super().__init__("interface_echo")
        self._keep = []
        for type_name in MESSAGE_TYPES:
            msg_type = getattr(interface_msgs, type_name)
            publisher = self.create_publisher(msg_type, f"echo/out/{type_name}", 10)
            self._keep.append(self.create_subscription(msg_type, f"echo/in/{type_name}", publisher.publish, 10))
        self.create_service(Detect, "echo/detect", self._detect)

    def _detect(self, request, response):
        response.success = True
        response.message = f"{request.image.width}x{request.image.height} '{request.prompt}'"
        response.detections.prompt = request.prompt
        response.detections.header = request.image.header
        return response


def main():
    rclpy.init()
    node = InterfaceEcho()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
