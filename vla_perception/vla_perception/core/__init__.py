"""ROS-free algorithms: models, geometry, language, grasping, planning."""
