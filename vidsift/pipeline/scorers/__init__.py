"""Relevance scorers that need the loaded video MLLM (registered in ``selectors.SCORERS``).

Importing a member module registers it; the `Pipeline` imports them and hands them its adapter.
"""
