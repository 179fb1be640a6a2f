"""docs/openapi.yaml is the published schema: it must be exactly what the code generates.

Clients are generated from the committed copy, so a change to a view, a serializer or
config/api/schema.py that changes the schema must come with the regenerated file. drf-spectacular's
response hook that adds the envelope is private API: this test is also what catches a release that
changes its output.
"""

import difflib
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.yaml"
REGENERATE = "make schema"


def _generate(path: Path) -> str:
    # The same command and arguments as the Makefile's `schema` target.
    call_command("spectacular", "--validate", "--fail-on-warn",
                 "--custom-settings", "config.api.schema.PUBLISHED_SETTINGS", "--file", str(path))
    return path.read_text()


def test_the_committed_schema_is_what_the_code_generates(tmp_path):
    generated = _generate(tmp_path / "openapi.yaml")
    committed = COMMITTED.read_text() if COMMITTED.exists() else ""
    if generated != committed:
        diff = "".join(list(difflib.unified_diff(
            committed.splitlines(keepends=True), generated.splitlines(keepends=True),
            fromfile="docs/openapi.yaml (committed)", tofile="generated from the code"))[:80])
        raise AssertionError(
            f"docs/openapi.yaml differs from the schema the code generates.\n"
            f"Run `{REGENERATE}` and commit docs/openapi.yaml (first lines of the diff below).\n\n{diff}")


def test_generation_is_deterministic(tmp_path):
    assert _generate(tmp_path / "one.yaml") == _generate(tmp_path / "two.yaml")
