"""The project's one config file (`configs/workbench.toml`), validated into frozen pydantic models that refuse
unknown keys and say `[section -> key] what is wrong`.

Modules: `settings` (the models and `load_config`), `database` (the `[labelstudio] database` URL: SQLite or a
PostgreSQL database, its password kept out of messages and files).
"""

from __future__ import annotations

from workbench.config.settings import (
    DEFAULT_CONFIG,
    DEFAULT_LABELS,
    Config,
    ModelConfig,
    check_cluster_address,
    load_config,
)

__all__ = ["DEFAULT_CONFIG", "DEFAULT_LABELS", "Config", "ModelConfig", "check_cluster_address", "load_config"]
