"""The README and docs/ point at things that exist: every relative link, every documented script, job and
settings file. Plain file checks, no Spark."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE_BLOCK = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)
# A repository path a command names: scripts/..., jobs/..., conf/... (not `myconf/`, not `$X/conf/`).
COMMAND_PATH = re.compile(r"(?<![\w$./-])((?:scripts|jobs|conf)/[\w.-]+(?:/[\w.-]+)*)")


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


def broken_links(page: Path) -> list[str]:
    """Relative links of a Markdown page whose file (anchor left aside) does not exist."""
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (http:, mailto:) or an anchor on the same page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    return broken


def missing_command_paths(page: Path) -> list[str]:
    """scripts/, jobs/ and conf/ paths named in a page's code blocks that the repository lacks."""
    named = {m for block in CODE_BLOCK.findall(page.read_text()) for m in COMMAND_PATH.findall(block)}
    return sorted(p for p in named if not (REPO / p.rstrip(".")).exists())


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_documented_command_file_exists(page):
    assert missing_command_paths(page) == []


def test_the_checks_catch_a_bad_link_and_a_missing_script(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[gone](no-such-page.md) [fine](page.md#top)\n```bash\nbash scripts/no_such.sh\n```\n")
    assert broken_links(page) == ["no-such-page.md"]
    assert missing_command_paths(page) == ["scripts/no_such.sh"]


def test_the_readme_is_a_front_door():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    assert "bash scripts/demo.sh" in readme and "bash scripts/test.sh" in readme
    assert re.search(r"stage 1 [\d,]+ s \(\d+ tests\), stage 2 [\d,]+ s \(\d+\s+tests", readme)
