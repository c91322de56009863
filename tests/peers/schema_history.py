"""The schema files as downstream teams hold them: every version in git history, open or closed.

A version is *open* when no object in it refuses unknown properties
(``"additionalProperties": false``) and no ``schema_version`` in it is a
``const`` or an ``enum``: a consumer validating with it accepts a later
minor's messages. The closed versions written before the compatibility rule
are listed in ``schemas/closed-versions.tsv``; nothing else may be closed.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
CLOSED_LIST = SCHEMAS / "closed-versions.tsv"
WORKING_TREE = "working tree"


@dataclass(frozen=True)
class SchemaVersion:
    file: str  # complaint.v1.json
    commit: str  # a commit id, or WORKING_TREE for the file as it is now
    document: dict[str, Any]

    def errors(self, instance: object) -> list[str]:
        """What this version finds wrong in ``instance`` (empty when it validates)."""
        validator = Draft202012Validator(self.document, format_checker=FormatChecker())
        return [
            f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
            for error in validator.iter_errors(instance)
        ]


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout


def require_full_history() -> None:
    """Stop with the command to run when the history cannot be read whole."""
    try:
        shallow = _git("rev-parse", "--is-shallow-repository").strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise AssertionError(
            f"the schema history check needs the git repository ({exc}); run it in a clone"
        ) from None
    if shallow != "false":
        raise AssertionError(
            "this clone is shallow: the schema history check needs every commit. "
            "Run `git fetch --unshallow` (CI clones the whole history)"
        )


def history(file: str) -> list[SchemaVersion]:
    """Every committed version of ``schemas/<file>``, newest first, then the working tree's."""
    commits = _git("log", "--format=%H", "--", f"schemas/{file}").split()
    versions = [
        SchemaVersion(file, commit, json.loads(_git("show", f"{commit}:schemas/{file}")))
        for commit in commits
    ]
    current = json.loads((SCHEMAS / file).read_text(encoding="utf-8"))
    if not versions or versions[0].document != current:
        versions.insert(0, SchemaVersion(file, WORKING_TREE, current))
    return versions


def _nodes(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def closing_parts(document: dict[str, Any]) -> list[str]:
    """What keeps a consumer holding ``document`` from accepting a later minor."""
    found = []
    for node in _nodes(document):
        if node.get("additionalProperties") is False:
            found.append(f"additionalProperties false in {node.get('title', '(an object)')}")
        version = node.get("properties", {}).get("schema_version")
        if isinstance(version, dict) and ("const" in version or "enum" in version):
            found.append(f"schema_version closed in {node.get('title', '(an object)')}")
    return found


def listed_closed() -> set[tuple[str, str]]:
    """(commit, file) of the closed versions listed in ``schemas/closed-versions.tsv``."""
    rows = set()
    for line in CLOSED_LIST.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        commit, file, reason = line.split("\t")
        assert reason.strip(), f"closed-versions.tsv: {commit} {file} gives no reason"
        rows.add((commit, file))
    return rows
