"""The only code that speaks to Label Studio, over HTTP or through its SDK.

`client` wraps the SDK (`LabelStudio`), `accounts` holds the login-form flows (tokens, annotator sign-up),
`binding` records which project this workbench labels in, `probes` asks a server whether it is up (no token), and
`transport` gives them one HTTP recipe and one mapping from failures to the workbench's errors.
"""

from workbench.labelstudio.client import LabelStudio

__all__ = ["LabelStudio"]
