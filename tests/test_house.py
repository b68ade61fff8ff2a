"""The house in order: README's settings table is ``settings.DEFAULTS``, docs/architecture.md
has a row for every file and folder at the top of the repository and names only functions
and paths that exist, the documents cite nothing outside the repository, the benchmarks
import nothing from the tests, and every ``data-*`` attribute of a page is read by a script."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from settings import DEFAULTS
from tests.skips import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
FILE_ENDINGS = {"py", "sql", "js", "mjs", "css", "md", "html", "json", "toml", "txt", "conf"}


def table_rows(path: Path, heading: str) -> list[list[str]]:
    """The cells of each row of the first table after ``heading`` (header row left out)."""
    text = path.read_text()
    assert heading in text, f"{path.name} has no heading {heading!r}"
    rows = []
    for line in text.split(heading, 1)[1].splitlines():
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [row for row in rows[1:] if not set(row[0]) <= {"-", ":"}]


def written_default(value: Any) -> str:
    """How README's table writes a setting's default."""
    if value is None:
        return "generated"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def test_readme_documents_every_setting_with_its_default_and_nothing_else():
    documented = {row[0].strip("`"): row[1] for row in table_rows(README, "## Settings")}
    problems = [
        f"README.md's settings table has no row for {name}; add one: "
        f"| `{name}` | {written_default(default)} | what it does |"
        for name, default in DEFAULTS.items()
        if name not in documented
    ]
    problems += [
        f"README.md documents {name}, which settings.DEFAULTS does not have"
        for name in documented
        if name not in DEFAULTS
    ]
    problems += [
        f"README.md gives {name} the default {shown}; settings.DEFAULTS has "
        f"{DEFAULTS[name]!r}, written {written_default(DEFAULTS[name])}"
        for name, shown in documented.items()
        # The default may be followed by a plain reading of it: `2678400` (31 days).
        if name in DEFAULTS and shown.split(" (", 1)[0] != written_default(DEFAULTS[name])
    ]
    assert not problems, "\n".join(problems)


def top_level_entries() -> set[str]:
    """Every file and folder (with a trailing slash) at the top of what git tracks."""
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as error:
        skip_or_fail(f"git cannot list the repository's files here ({error})")
    return {path.split("/", 1)[0] + ("/" if "/" in path else "") for path in listed}


def test_architecture_has_a_row_for_every_file_and_folder_at_the_top():
    named = {
        name.strip().strip("`")
        for row in table_rows(ARCHITECTURE, "## Rooms of the house")
        for name in row[0].split(",")
    }
    present = top_level_entries()
    problems = [
        f"docs/architecture.md's table of rooms has no row for {name}" for name in present - named
    ]
    problems += [
        f"docs/architecture.md's table of rooms names {name}, which the repository does not have"
        for name in named - present
    ]
    assert not problems, "\n".join(sorted(problems))


def resolves(dotted: str) -> bool:
    """Whether ``module.attribute`` (or ``package.module.attribute``) exists."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                found = getattr(found, attribute)
        except AttributeError:
            return False
        return True
    return False


def test_architecture_names_only_functions_and_paths_that_exist():
    modules = {path.stem for path in ROOT.glob("*.py")} | {"bench", "deploy", "tests"}
    text = ARCHITECTURE.read_text()
    quoted = re.findall(r"`([^`\s]+)`", text)
    dotted = [
        name
        for name in quoted
        if re.fullmatch(r"[a-z_]+(\.[A-Za-z_]\w*)+", name)
        and name.split(".")[0] in modules
        and name.rsplit(".", 1)[1] not in FILE_ENDINGS
    ]
    paths = [name for name in quoted if re.fullmatch(r"[\w.@-]+(/[\w.@*-]+)+/?", name)]
    assert dotted and paths, "the pattern no longer finds what the document names"
    missing = [f"`{name}` does not exist" for name in dotted if not resolves(name)]
    missing += [
        f"`{path}` is not in the repository"
        for path in paths
        if "*" not in path and not (ROOT / path).exists() and not ignored_by_git(path)
    ]
    assert not missing, "docs/architecture.md: " + "; ".join(missing)


def ignored_by_git(path: str) -> bool:
    """A path made at set-up or at run time (static/vendor/, instance/), not kept in git."""
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0


def test_architecture_tells_what_orders_a_sockets_events():
    text = ARCHITECTURE.read_text()
    assert "async_handlers=False" in text
    assert "async_handlers=False" in (ROOT / "app.py").read_text()


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_documents_stand_on_their_own(document):
    text = document.read_text()
    for outside in ("DESIGN.md", "STYLE.md"):
        assert outside not in text, f"{document.name} cites {outside}, outside the repository"


def test_bench_imports_nothing_from_the_tests():
    """The tests import the benchmarks' server support, never the other way round."""
    offenders = []
    for path in sorted((ROOT / "bench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {name}"
                for name in names
                if name == "tests" or name.startswith("tests.")
            ]
    assert not offenders, "\n".join(offenders)


def test_every_data_attribute_of_the_pages_is_read_by_a_script():
    scripts = "".join(path.read_text() for path in sorted((ROOT / "static").rglob("*.js")))
    unread = []
    for template in sorted((ROOT / "templates").glob("*.html")):
        for name in sorted(set(re.findall(r"\bdata-([a-z][a-z-]*)=", template.read_text()))):
            camel = re.sub(r"-([a-z])", lambda match: match.group(1).upper(), name)
            if f"dataset.{camel}" not in scripts and f"data-{name}" not in scripts:
                unread.append(f"{template.name}: data-{name}")
    assert not unread, "no script reads " + ", ".join(unread)
