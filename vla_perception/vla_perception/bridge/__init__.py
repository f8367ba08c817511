"""Translation between ROS messages and the numpy / core types."""
