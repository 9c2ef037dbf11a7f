"""``save_model_code``: the saved text is the model file's import lines and the class's source,
laid out as the original NNHandler stores it, and it defines the class again on its own."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
import torch

from nn_handler import NNHandler
from nn_handler._codecs.model_code import model_code

MODEL_FILE = '''\
"""A user's model file."""
from __future__ import annotations

import math
import torch.nn as nn
from torch import nn as torch_nn
from torch.nn import Linear as Lin, functional as Fn


class Unused:
    pass


class Net(nn.Module):
    def __init__(self, n: int = 3):
        super().__init__()
        self.lin = Lin(n, 2)
        self.extra = torch_nn.Identity()

    def forward(self, x):
        def scaled(v):
            import operator  # an import inside a function is kept too, as the original does

            return operator.mul(v, math.sqrt(1.0))

        return Fn.relu(self.extra(scaled(self.lin(x))))
'''

IMPORTS = [
    "from __future__ import annotations",  # first, or the text would not compile
    "from torch import nn as torch_nn",
    "from torch.nn import Linear as Lin",
    "from torch.nn import functional as Fn",
    "import math",
    "import operator",
    "import torch.nn as nn",
]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "user_models_i23.py").write_text(MODEL_FILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("user_models_i23")
    yield module
    sys.modules.pop("user_models_i23", None)


def test_the_saved_text_is_the_originals_layout(user_module):
    code = model_code(user_module.Net)
    head, _, body = code.partition("\n\n")
    assert head.splitlines() == IMPORTS
    assert body.startswith("class Net(nn.Module):") and "class Unused" not in code
    assert NNHandler(user_module.Net, save_model_code=True).model_code == code


def test_the_saved_text_rebuilds_the_class_in_a_fresh_namespace(user_module):
    namespace: dict = {}
    exec(compile(model_code(user_module.Net), "<saved>", "exec"), namespace)  # noqa: S102
    rebuilt = namespace["Net"](n=3)
    torch.manual_seed(0)
    original = user_module.Net(n=3)
    rebuilt.load_state_dict(original.state_dict())
    x = torch.randn(4, 3)
    assert torch.equal(rebuilt(x), original(x))


def test_a_trusted_load_rebuilds_the_model_from_the_file_alone(user_module, tmp_path):
    handler = NNHandler(user_module.Net, save_model_code=True, n=5)
    handler.save(str(tmp_path / "net.pth"))
    del sys.modules["user_models_i23"]
    (tmp_path / "user_models_i23.py").unlink()  # the class can no longer be imported
    loaded = NNHandler.load(str(tmp_path / "net.pth"), trust_model_code=True)
    assert type(loaded.module).__name__ == "Net" and loaded.module.lin.in_features == 5
    assert torch.equal(loaded.module.lin.weight, handler.module.lin.weight)


def test_a_class_without_a_file_has_no_code():
    namespace: dict = {}
    exec(textwrap.dedent(MODEL_FILE), namespace)  # noqa: S102 - defined without a source file
    assert model_code(namespace["Net"]) is None


def test_a_class_defined_in_a_function_is_stored_dedented():
    class Local(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

    code = model_code(Local)
    assert "\nclass Local(torch.nn.Module):\n" in code and "import torch\n" in code
    namespace: dict = {}
    exec(compile(code, "<saved>", "exec"), namespace)  # noqa: S102
    assert namespace["Local"]().lin.in_features == 2
