"""Tests of check_links.py on small repositories made in a temporary directory.

Run by `make docs`: python3 -m pytest docs/test_check_links.py
"""

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_links  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "check_links.py"


def make_repo(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


GOOD = {
    "README.md": "# Demo\n\nRead [the book](docs/src/intro.md#set-up-make-test) and the\n"
                 "[Makefile](Makefile).\n",
    "Makefile": "test:\n",
    "docs/src/SUMMARY.md": "# Summary\n\n[Intro](intro.md)\n\n- [Usage](usage.md)\n",
    "docs/src/intro.md": "# Intro\n\n## Set up: `make test`\n\n## Again\n\n## Again\n\n"
                         "See [usage](usage.md#flags), [again](#again-1) and\n"
                         "[the Makefile](../../Makefile).\n",
    "docs/src/usage.md": "# Usage\n\n## Flags {#flags}\n\n"
                         "```sh\n[not a link](nowhere.md)\n```\n\n"
                         "Inline `[not a link](nowhere.md)` either, nor one that runs `over\n"
                         "two lines [x](nowhere.md)`. [External](https://example.invalid/x).\n",
}


def run_script(root):
    return subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True,
                          text=True)


def test_a_good_tree_passes(tmp_path):
    root = make_repo(tmp_path, GOOD)
    assert check_links.check(root) == []
    result = run_script(root)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


@pytest.mark.parametrize("name, added, message", [
    ("docs/src/usage.md", "See [gone](missing.md).\n", "no such file"),
    ("docs/src/usage.md", "See [intro](intro.md#no-such-heading).\n",
     "has no heading with the id `no-such-heading`"),
    ("docs/src/usage.md", "See [here](#usage-1).\n", "has no heading"),
    ("README.md", "[up](../outside.md)\n", "points outside the repository"),
    ("README.md", "[empty]()\n", "empty link target"),
    ("README.md", "[make](Makefile#test)\n", "not Markdown"),
    ("docs/src/usage.md", "[front door](../../README.md)\n", "outside docs/src"),
    ("docs/src/extra.md", "# Not in the summary\n", "not listed in docs/src/SUMMARY.md"),
])
def test_a_broken_link_fails(tmp_path, name, added, message):
    root = make_repo(tmp_path, {**GOOD, name: GOOD.get(name, "") + "\n" + added})
    errors = check_links.check(root)
    assert len(errors) == 1, errors
    assert message in errors[0]
    result = run_script(root)
    assert result.returncode == 1
    assert message in result.stderr
    assert f"{name}:" in result.stderr


def test_the_error_names_the_line(tmp_path):
    root = make_repo(tmp_path, {**GOOD, "README.md": "# Demo\n\nfine\n\n[x](nope.md)\n"})
    assert check_links.check(root) == ["README.md:5: `nope.md`: no such file nope.md"]


def test_slugs_are_mdbook_and_github_ids():
    assert check_links.slug("Security: listeners, TLS and SASL") == \
        "security-listeners-tls-and-sasl"
    assert check_links.slug(check_links.heading_text("A first topic, with `trib`")) == \
        "a-first-topic-with-trib"
    assert check_links.slug("librdkafka's regression suite") == "librdkafkas-regression-suite"
    assert check_links.slug("Ünïcode héading_x-y") == "ünïcode-héading_x-y"


def test_the_repository_itself_passes():
    root = Path(__file__).resolve().parent.parent
    assert check_links.check(root) == []
