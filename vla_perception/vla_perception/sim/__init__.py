"""Headless pybullet tabletop scene with a Panda arm and an RGB-D camera."""
