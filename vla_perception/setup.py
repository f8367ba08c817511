"""ament_python package of the vla_perception nodes, core algorithms and simulator."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vla_perception"

NODES = {
    "clip_node": "vla_perception.nodes.clip_node:main",
    "detector_node": "vla_perception.nodes.detector_node:main",
    "vlm_node": "vla_perception.nodes.vlm_node:main",
    "pose_node": "vla_perception.nodes.pose_node:main",
    "tracker_node": "vla_perception.nodes.tracker_node:main",
    "grasp_orchestrator": "vla_perception.nodes.grasp_orchestrator:main",
    "sim_camera": "vla_perception.nodes.sim_camera:main",
}

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
    ],
    install_requires=["setuptools", "numpy", "pyyaml"],
    zip_safe=True,
    maintainer="vla_perception maintainers",
    maintainer_email="maintainers@vla-perception.dev",
    description="Open-vocabulary perception and grasp planning nodes for ROS 2.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [f"{name} = {target}" for name, target in NODES.items()]
        + ["vla-perception = vla_perception.cli.main:main"],
    },
)
