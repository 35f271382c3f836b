"""Which option a free-form model reply chose: `extract_choice`, shared with `vidsift ask
--options`, the server and batch manifests (it lives in `vidsift.pipeline.choice`)."""

from ..pipeline.choice import extract_choice

__all__ = ["extract_choice"]
