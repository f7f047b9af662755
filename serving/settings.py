"""Service settings, read from the environment (``PREDICTIVE_SCORING_*``) and validated.

Every setting has one name: the field below, upper-cased, after the prefix
``PREDICTIVE_SCORING_`` (``PREDICTIVE_SCORING_MODEL_URI``, ``PREDICTIVE_SCORING_API_KEYS``...).
Keys are comma-separated lists; they are held as secrets and never printed or logged.
The tracking store is ``MLFLOW_TRACKING_URI`` or the base config's, as for every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ENV_PREFIX = "PREDICTIVE_SCORING_"
MIN_KEY_LENGTH = 16

KeyList = Annotated[tuple[SecretStr, ...], NoDecode]


class Settings(BaseSettings):
    """What the service loads, who may call it, and its limits."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore",
                                      protected_namespaces=())

    model_uri: str = Field(description="models:/NAME@champion, models:/NAME/VERSION, "
                           "runs:/RUN_ID/model or an exported bundle folder")
    base_config: Path = Field(Path("configs/base.yaml"),
                              description="project settings (the tracking store)")
    api_keys: KeyList = Field(description="keys that may score and read model metadata")
    admin_keys: KeyList = Field((), description="keys that may also reload the model")
    max_body_bytes: int = Field(8 * 2**20, gt=0, description="larger bodies get 413")
    max_batch_leads: int = Field(1000, gt=0, description="leads per batch request")
    max_events_per_lead: int = Field(10_000, gt=0, description="events per lead")
    reload_check_seconds: float = Field(0, ge=0, description="check the model URI this "
                                        "often and reload when it points at a new version "
                                        "(every worker does); 0: only on /v1/admin/reload")
    reasons: int = Field(3, ge=0, le=20, description="top reasons returned per lead")
    prediction_log: bool = Field(False, description="log every score to a database")
    prediction_log_url: str = Field("sqlite:///out/predictions.db",
                                    description="SQLAlchemy URL of the prediction log "
                                    "(SQLite file, or postgresql+psycopg://...)")
    prediction_log_spool: Path = Field(Path("out/prediction-log-spool"), description=(
        "local folder where scores wait until the database has them (a worker's rows "
        "survive it being killed; replayed at start)"))
    prediction_log_bins_days: float = Field(400, gt=0, description=(
        "days the prediction log keeps each lead's input bins (what drift reads); older "
        "rows keep their scores, their bins are cleared"))
    log_level: str = Field("INFO", description="level of the service's log lines")

    @field_validator("api_keys", "admin_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _long_enough(cls, keys: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        short = [i + 1 for i, key in enumerate(keys)
                 if len(key.get_secret_value()) < MIN_KEY_LENGTH]
        if short:
            raise ValueError(f"key(s) number {short} are shorter than {MIN_KEY_LENGTH} "
                             "characters; use long random keys (e.g. `openssl rand -hex 24`)")
        return keys

    @model_validator(mode="after")
    def _has_api_keys(self) -> Settings:
        if not self.api_keys:
            raise ValueError(f"set {ENV_PREFIX}API_KEYS (comma-separated): the service never "
                             "runs without authentication")
        return self
