"""Hybrid tracking (ROS-free): open-vocabulary detections carried between detector updates."""
from vla_perception.core.tracking.flow import FlowParams, FlowPropagator
from vla_perception.core.tracking.tracker import (HybridTracker, Track, TrackedObject, TrackerParams, TrackState,
                                                  prompt_phrases)

__all__ = ["FlowParams", "FlowPropagator", "HybridTracker", "Track", "TrackedObject", "TrackerParams",
           "TrackState", "prompt_phrases"]
