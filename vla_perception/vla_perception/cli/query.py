"""``vla-perception detect|classify|caption|ask``: call a running node's service and print the answer.

The same calls as ``ros2 service call``, for machines without ros2cli. Without
``--image`` the node uses the latest frame it received on its ``image`` topic.
"""
from __future__ import annotations

import sys

from vla_perception import names
from vla_perception.bringup.environment import ros_environment

SERVICES = {  # command -> (default service, type name)
    "detect": (names.DETECT.absolute, "Detect"),
    "classify": (names.CLASSIFY.absolute, "Classify"),
    "caption": (names.CAPTION.absolute, "Caption"),
    "ask": (names.ANSWER.absolute, "AnswerQuestion"),
}


def add_arguments(parser, command):
    parser.add_argument("--service", default=SERVICES[command][0], help="service to call (default: %(default)s)")
    parser.add_argument("--image", help="image file to send (PNG/JPEG); default: the node's latest frame")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the answer")
    if command == "detect":
        parser.add_argument("prompt", nargs="?", default="", help="'red cup . blue bottle'; default: the node's")
        parser.add_argument("--box-threshold", type=float, default=0.0)
        parser.add_argument("--text-threshold", type=float, default=0.0)
    elif command == "classify":
        parser.add_argument("labels", nargs="*", help="labels to score; default: the node's")
        parser.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1",
                            help="classify this box instead of the whole frame (repeatable)")
    elif command == "caption":
        parser.add_argument("--prefix", default="", help="text the caption must start with")
    elif command == "ask":
        parser.add_argument("question", help="a question about the image")


def build_request(args, srv_type):
    from vla_perception.bridge.messages import box_to_msg
    from vla_perception.core.types import Box2D

    request = srv_type.Request()
    if args.image:
        request.image = load_image(args.image)
    if args.command == "detect":
        request.prompt, request.box_threshold, request.text_threshold = args.prompt, args.box_threshold, \
            args.text_threshold
    elif args.command == "classify":
        request.labels = list(args.labels)
        request.boxes = [box_to_msg(Box2D(*map(float, box.split(",")))) for box in args.box]
    elif args.command == "caption":
        request.prefix = args.prefix
    elif args.command == "ask":
        request.question = args.question
    return request


def load_image(path: str):
    import numpy as np
    from PIL import Image as PilImage

    from vla_perception.bridge.image import cv2_to_imgmsg

    with PilImage.open(path) as image:
        return cv2_to_imgmsg(np.asarray(image.convert("RGB")), "rgb8")


def format_response(command: str, response) -> str:
    if not response.success:
        return f"failed: {response.message}"
    if command == "detect":
        array = response.detections
        lines = [f"{len(array.detections)} detection(s) for '{array.prompt}' in {array.inference_time:.3f} s"]
        lines += [f"  {d.label:<20} {d.score:.2f}  box centre ({d.bbox.center_x:.0f}, {d.bbox.center_y:.0f}) "
                  f"size {d.bbox.size_x:.0f}x{d.bbox.size_y:.0f}" for d in array.detections]
        return "\n".join(lines)
    if command == "classify":
        lines = []
        for result in response.results:
            where = (f"box ({result.bbox.center_x:.0f}, {result.bbox.center_y:.0f})" if result.has_box
                     else "frame")
            scores = ", ".join(f"{label} {score:.2f}" for label, score in zip(result.labels, result.scores))
            lines.append(f"{where}: {result.best_label} ({scores})")
        return "\n".join(lines)
    if command == "caption":
        return f"{response.caption}    ({response.inference_time:.2f} s)"
    return f"{response.answer}    ({response.inference_time:.2f} s)"


def run(args) -> int:
    ros_environment()  # before rclpy: DDS stays on this machine
    import rclpy
    from vla_perception_interfaces import srv

    srv_type = getattr(srv, SERVICES[args.command][1])
    rclpy.init()
    node = rclpy.create_node("vla_perception_query")
    try:
        client = node.create_client(srv_type, args.service)
        if not client.wait_for_service(timeout_sec=10.0):
            print(f"failed: service {args.service} is not available (is the node running and active?)",
                  file=sys.stderr)
            return 2
        future = client.call_async(build_request(args, srv_type))
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
        if not future.done():
            print(f"failed: no answer from {args.service} within {args.timeout:.0f} s", file=sys.stderr)
            return 2
        response = future.result()
        print(format_response(args.command, response))
        return 0 if response.success else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
