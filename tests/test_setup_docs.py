"""The set-up commands: one path, said the same way everywhere.

The README's set-up commands (main job, tests, docs) must appear verbatim on
the docs' landing page, and ``.ci/run`` must run the README's test command
verbatim; the test and docs commands take torch from the PyTorch CPU index.
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_readme_has_the_three_setup_commands():
    main, tests, docs = readme_commands()
    assert main == "pip install -e . && python -m softmax_core"
    assert tests == f'pip install {CPU_INDEX} -e ".[test]" && python -m pytest'
    assert docs == f'pip install {CPU_INDEX} -e ".[test,docs]" && bash docs/build.sh'
    # one pip call each: one compilation of the kernels
    for command in (main, tests, docs):
        assert command.count("pip install") == 1


def test_ci_runs_the_readme_test_command_verbatim():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in lines


@pytest.mark.parametrize("command", readme_commands())
def test_landing_page_says_the_same(command):
    index = (ROOT / "docs" / "index.rst").read_text()
    assert f"   {command}\n" in index  # inside a code-block


def test_torch_is_no_dependency_of_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    deps = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "torch" not in deps
