"""Deciding, before the LLM runs, which frames and how many visual tokens each deserves."""

from .types import Budget, FrameScores, PlannedFrame, TokenPlan

__all__ = ["Budget", "FrameScores", "PlannedFrame", "TokenPlan"]
