"""workbench: raw articles -> spaCy pre-annotations -> Label Studio corrections -> versioned HF datasets."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("workbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
