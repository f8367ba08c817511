"""Model profiles (config/models.yaml) and where each model's weights come from.

A :class:`ModelSource` names one model: a hub id (Hugging Face, or open_clip architecture + pretrained
tag) loaded through the normal caches, or a local directory/file. ``resolve_model_source(profile,
family, override)`` picks the profile's entry unless ``override`` (a ROS parameter) names another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

FAMILIES = ("clip", "grounding_dino", "owlvit", "blip_caption", "blip_vqa", "clipseg", "blip2", "hf_chat")
# Large, only used by vlm_node's backend:=blip2 / hf_chat: `models fetch` gets them when named with --family.
ON_REQUEST_FAMILIES = ("blip2", "hf_chat")
TINY_ROOT_ENV = "VLA_PERCEPTION_MODELS"
TINY_ROOT_DEFAULT = "~/.cache/vla_perception/tiny"

# Same table as config/models.yaml (a test keeps them identical); used when the YAML is not installed.
BUILTIN_PROFILES = {
    "default": {
        "clip": {"architecture": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"},
        "grounding_dino": "IDEA-Research/grounding-dino-tiny",
        "owlvit": "google/owlvit-base-patch32",
        "blip_caption": "Salesforce/blip-image-captioning-base",
        "blip_vqa": "Salesforce/blip-vqa-base",
        "clipseg": "CIDAS/clipseg-rd64-refined",
        "blip2": "Salesforce/blip2-opt-2.7b",
        "hf_chat": "HuggingFaceTB/SmolVLM-256M-Instruct",
    },
    "tiny": {
        "root_env": TINY_ROOT_ENV,
        "root_default": TINY_ROOT_DEFAULT,
        "clip": "clip",
        "grounding_dino": "grounding_dino",
        "owlvit": "owlvit",
        "blip_caption": "blip_caption",
        "blip_vqa": "blip_vqa",
        "clipseg": "clipseg",
        "blip2": "blip2",
        "hf_chat": "hf_chat",
    },
}


@dataclass(frozen=True)
class ModelSource:
    """One model's weights: ``local_path`` for a local dir/file, else ``hub_id`` (+ ``pretrained``)."""

    family: str
    hub_id: str = ""
    pretrained: str = ""
    local_path: Optional[Path] = None
    profile: str = ""

    @property
    def model_id(self) -> str:
        if self.local_path is not None:
            return str(self.local_path)
        return f"{self.hub_id}:{self.pretrained}" if self.pretrained else self.hub_id


def models_yaml_path() -> Optional[Path]:
    """config/models.yaml next to the package (source tree) or in the installed share directory."""
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / "config" / "models.yaml"]
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("vla_perception")) / "config" / "models.yaml")
    except (
        Exception
    ):  # ament index absent or package not installed: the source tree or built-in table is used
        pass
    return next((path for path in candidates if path.is_file()), None)


def load_profiles() -> dict:
    path = models_yaml_path()
    if path is None:
        return BUILTIN_PROFILES
    import yaml

    return yaml.safe_load(path.read_text())["profiles"]


def tiny_root(profile_table: Optional[dict] = None) -> Path:
    table = profile_table or BUILTIN_PROFILES["tiny"]
    root = os.environ.get(table.get("root_env", TINY_ROOT_ENV)) or table.get(
        "root_default", TINY_ROOT_DEFAULT
    )
    return Path(root).expanduser()


def looks_like_path(text: str) -> bool:
    return text.startswith(("/", "./", "../", "~")) or Path(text).expanduser().exists()


def source_from_override(family: str, override: str) -> ModelSource:
    """Parse a local path or ``local-dir:PATH``, a hub id, or CLIP's ``ARCH[:PRETRAINED]`` / ``hf-hub:ID``."""
    text = override.strip()
    if text.startswith("local-dir:"):  # open_clip's spelling of a local directory, as clip_node documents
        return ModelSource(family, local_path=Path(text[len("local-dir:"):]).expanduser().resolve())
    if looks_like_path(text):
        return ModelSource(family, local_path=Path(text).expanduser().resolve())
    if family == "clip" and ":" in text and not text.startswith("hf-hub:"):
        architecture, pretrained = text.split(":", 1)
        return ModelSource(family, hub_id=architecture, pretrained=pretrained)
    return ModelSource(family, hub_id=text)


def resolve_model_source(
    profile: str = "default", family: str = "clip", override: Optional[str] = None
) -> ModelSource:
    """Return the weights ``family`` uses under ``profile``, unless ``override`` names other ones."""
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    if override and override.strip():
        return source_from_override(family, override)
    profiles = load_profiles()
    if profile not in profiles:
        raise ValueError(f"unknown model profile {profile!r}; config/models.yaml has {sorted(profiles)}")
    table = profiles[profile]
    entry = table[family]
    if profile == "tiny":
        return ModelSource(family, local_path=tiny_root(table) / entry, profile=profile)
    if isinstance(entry, dict):
        return ModelSource(
            family, hub_id=entry["architecture"], pretrained=entry.get("pretrained", ""), profile=profile
        )
    source = source_from_override(family, entry)
    return ModelSource(source.family, source.hub_id, source.pretrained, source.local_path, profile)
