"""Accuracy of vidsift settings on public video multiple-choice benchmarks (Video-MME, MVBench,
MLVU, NExT-QA): dataset loaders, the multiple-choice prompt, answer extraction, resumable
scoring on the batch engine (`vidsift eval`), and an lmms-eval model plugin (`lmms_plugin`).
Dataset layouts: see ``vidsift/eval/README.md``."""

from .datasets import DATASETS, load_dataset
from .extract import extract_choice
from .items import LETTERS, EvalItem
from .prompt import MCPrompt
from .runner import EvalReport, EvalSetting, make_jobs, parse_settings, run_eval, score

__all__ = ["DATASETS", "LETTERS", "EvalItem", "EvalReport", "EvalSetting", "MCPrompt", "extract_choice",
           "load_dataset", "make_jobs", "parse_settings", "run_eval", "score"]
