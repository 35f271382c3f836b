"""Every ``from_pretrained`` in the product loads safetensors weights and never a checkpoint's own
code (issue 12, safe inputs): checked on the source, so a new call site cannot forget it."""

from __future__ import annotations

import ast
from pathlib import Path

import vidsift

OWN = {"Pipeline", "cls"}  # vidsift's own from_pretrained (it calls the loader below)
NO_WEIGHTS = {"AutoConfig", "AutoTokenizer", "AutoProcessor", "AutoImageProcessor", "AutoVideoProcessor"}


def _calls():
    root = Path(vidsift.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "from_pretrained":
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else ast.unparse(owner)
                if name not in OWN:
                    yield f"{path.relative_to(root.parent)}:{node.lineno} {name}", name, {
                        k.arg: k.value.value for k in node.keywords if k.arg and isinstance(k.value, ast.Constant)}


def test_every_from_pretrained_is_safe():
    calls = list(_calls())
    assert len(calls) >= 5  # the model loader (config, model, tokenizer) and the scorers (model, tokenizer)
    for where, name, kwargs in calls:
        assert kwargs.get("trust_remote_code") is False, f"{where}: needs trust_remote_code=False"
        if name not in NO_WEIGHTS:
            assert kwargs.get("use_safetensors") is True, f"{where}: loads weights without use_safetensors=True"
