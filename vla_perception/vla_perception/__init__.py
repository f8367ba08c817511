"""vla_perception: open-vocabulary perception and grasp planning for ROS 2."""
