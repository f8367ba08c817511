"""Turning a ModelSource into files on disk, or one clear ModelNotAvailableError."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from vla_perception.core.models.errors import FETCH_COMMAND, MAKE_TINY_COMMAND, ModelNotAvailableError
from vla_perception.core.models.sources import ModelSource

logger = logging.getLogger(__name__)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def hf_cache_dir() -> str:
    """Read at call time (huggingface_hub.constants is fixed at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    return os.path.join(home, "hub")


def fetch_command(source: ModelSource) -> str:
    from vla_perception.core.models.sources import ON_REQUEST_FAMILIES

    if source.profile == "tiny":
        return MAKE_TINY_COMMAND
    command = FETCH_COMMAND + (f" --family {source.family}" if source.family in ON_REQUEST_FAMILIES else "")
    return f"{command} on a machine with network (or: {command} --dest DIR, then copy DIR)"


def require_local(source: ModelSource) -> Path:
    """The local checkpoint's path; a missing tiny model is built first; other missing ones raise."""
    path = source.local_path
    if path is not None and not path.exists() and source.profile == "tiny":
        build_missing_tiny_model(source.family, path)
    if path is None or not path.exists():
        command = fetch_command(source)
        if source.profile == "tiny":
            command = command.replace("DIR", str(path.parent))
        raise ModelNotAvailableError(source.model_id, [str(path)], command, "no such file or directory")
    return path


def build_missing_tiny_model(family: str, path: Path) -> None:
    """Profile tiny on first use: build the model (deterministic, local, seconds); failing that, leave it missing."""
    from vla_perception.core.models.tiny import build_tiny_model

    logger.info(f"building the missing tiny {family} model in {path} (random weights, no network; first use only)")
    try:
        build_tiny_model(family, path)
    except OSError as error:
        logger.warning(f"could not build the tiny {family} model in {path}: {error}")


def not_available(source: ModelSource, error: Exception) -> ModelNotAvailableError:
    where = [f"Hugging Face cache {hf_cache_dir()}/models--{source.hub_id.replace('/', '--')}"]
    reason = "HF_HUB_OFFLINE=1 and not in the cache" if offline() else f"{type(error).__name__}: {error}"
    return ModelNotAvailableError(source.model_id, where, fetch_command(source), reason)


def hf_pretrained(cls, source: ModelSource, **kwargs):
    """Call ``cls.from_pretrained`` on a local dir or hub id; prefer safetensors; missing -> one error."""
    if source.local_path is not None:
        path = require_local(source)
        has_safetensors = any(path.glob("*.safetensors")) if path.is_dir() else path.suffix == ".safetensors"
        if "use_safetensors" in kwargs:
            kwargs["use_safetensors"] = has_safetensors
        return cls.from_pretrained(str(path), **kwargs)
    try:
        try:
            return cls.from_pretrained(source.hub_id, **kwargs)
        except OSError:
            if not kwargs.get("use_safetensors"):
                raise
            # No .safetensors in this repo: transformers then loads the pickle with weights_only=True.
            return cls.from_pretrained(source.hub_id, **{**kwargs, "use_safetensors": False})
    except (OSError, ValueError) as error:  # transformers raises OSError for missing/offline repos
        raise not_available(source, error) from error


def as_source(source, family: str) -> ModelSource:
    """Accept a ModelSource or a plain hub id / local path string."""
    if isinstance(source, ModelSource):
        return source
    from vla_perception.core.models.sources import resolve_model_source

    return resolve_model_source("default", family, str(source))
