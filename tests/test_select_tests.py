"""mutation_check.py --all-fast's selection: which test files may see a change to a file.

Checked on a small repository of the same layout (``nn_handler/``, ``adapters/`` installed as
``nn_handler.adapters``, ``tests/`` with a helper module), traced by a real pytest run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from select_tests import TRACE_ENV, module_name, reached_modules, select_test_files

TESTS = Path(__file__).resolve().parent

FILES = {
    "pytest.ini": "[pytest]\n",
    "nn_handler/__init__.py": "from .a import used\n",
    "nn_handler/a.py": "LIMIT = 3\n\n\ndef used():\n    return 1\n",
    "nn_handler/b.py": "def other():\n    return 2\n",
    "adapters/__init__.py": "",
    "adapters/c.py": "def chunk():\n    return 3\n",
    "tests/conftest.py": "",
    "tests/helper.py": "from nn_handler.b import other\n\n\ndef via_helper():\n"
    "    return other()\n",
    # calls nn_handler.a
    "tests/test_direct.py": "from nn_handler.a import used\n\n\ndef test_a():\n"
    "    assert used() == 1\n",
    # calls nn_handler.b through the helper module
    "tests/test_through_helper.py": "from helper import via_helper\n\n\ndef test_b():\n"
    "    assert via_helper() == 2\n",
    # imports the adapters module inside the test only
    "tests/test_lazy.py": "def test_c():\n    from nn_handler.adapters.c import chunk\n\n"
    "    assert chunk() == 3\n",
    # may run anything in another process
    "tests/test_spawns.py": "import subprocess\n\n\ndef test_d():\n    assert subprocess.run\n",
    # runs code its imports do not show
    "tests/test_exec.py": "def test_f():\n"
    "    exec('from nn_handler.a import used; assert used()')\n",
    # imports the package (and so nn_handler.a) but calls nothing
    "tests/test_untouched.py": "import nn_handler\n\n\ndef test_e():\n    assert nn_handler\n",
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("repo")
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "nn_handler" / "adapters").symlink_to("../adapters", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(TESTS)])
    env[TRACE_ENV] = str(root / "trace.json")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "select_tests"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return root, json.loads((root / "trace.json").read_text())


def test_module_names_follow_the_installed_layout(repo):
    root, _ = repo
    assert module_name(root / "adapters/c.py", root) == "nn_handler.adapters.c"
    assert module_name(root / "nn_handler/__init__.py", root) == "nn_handler"
    assert module_name(root / "tests/helper.py", root) == "helper"


def test_the_trace_says_which_files_each_test_file_ran(repo):
    _, trace = repo
    assert "nn_handler/a.py" in trace["tests/test_direct.py"]
    assert {"tests/helper.py", "nn_handler/b.py"} <= set(trace["tests/test_through_helper.py"])
    assert "adapters/c.py" in trace["tests/test_lazy.py"]  # one name, also through the link
    assert "nn_handler/a.py" not in trace.get("tests/test_untouched.py", [])


def test_a_function_edit_selects_the_test_files_that_ran_it(repo):
    root, trace = repo

    def select(source, original):
        return select_test_files(source, trace, [original], root=root)

    spawns = "tests/test_spawns.py"  # its other processes are not traced: always selected
    assert select("nn_handler/a.py", "    return 1") == [
        "tests/test_direct.py",
        "tests/test_exec.py",
        spawns,
    ]
    assert select("nn_handler/b.py", "    return 2") == [spawns, "tests/test_through_helper.py"]
    assert select("adapters/c.py", "    return 3") == ["tests/test_lazy.py", spawns]
    assert select("tests/helper.py", "    return other()") == [
        spawns,
        "tests/test_through_helper.py",
    ]


def test_a_module_level_edit_selects_every_test_file_that_imports_the_module(repo):
    root, trace = repo
    # Directly, through the helper module (nn_handler.b's package imports .a), lazily.
    assert "nn_handler.a" in reached_modules(root / "tests/test_through_helper.py", root)
    assert select_test_files("nn_handler/a.py", trace, ["LIMIT = 3"], root=root) == [
        "tests/test_direct.py",
        "tests/test_exec.py",
        "tests/test_lazy.py",
        "tests/test_spawns.py",
        "tests/test_through_helper.py",
        "tests/test_untouched.py",
    ]
    # test_exec imports nothing of the package: what it may run is unknown, it is selected.
    assert select_test_files("adapters/c.py", trace, None, root=root) == [
        "tests/test_exec.py",
        "tests/test_lazy.py",
        "tests/test_spawns.py",
    ]
