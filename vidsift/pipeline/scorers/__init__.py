"""Relevance scorers that need the loaded video MLLM, added to ``selectors.SCORERS`` by name.

Importing `vidsift.pipeline` imports this package (no member): ``--scorer mllm`` is then known to
the registry, and `Pipeline` hands its adapter to the member it builds.
"""

from ...selectors.base import SCORERS

SCORERS.register("mllm", "vidsift.pipeline.scorers.mllm:MllmScorer")
