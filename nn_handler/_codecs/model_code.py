"""The text ``save_model_code`` keeps: the model file's import lines, then the class's source.

Laid out as the original NNHandler stores it, so that the text can be executed on its own to
define the class again: every import statement of the class's file (one name per line, sorted,
``__future__`` first), a blank line, and the class's source.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

__all__ = ["model_code"]


def _import_lines(tree: ast.AST) -> list[str]:
    lines: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                lines.add(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                suffix = f" as {alias.asname}" if alias.asname else ""
                lines.add(f"from {module} import {alias.name}{suffix}")
    # A __future__ import must come first in the text to be executable.
    return sorted(lines, key=lambda line: (not line.startswith("from __future__ "), line))


def model_code(cls: type) -> str | None:
    """The import lines of ``cls``'s file, a blank line and the source of ``cls``; just the
    class's source when its file cannot be parsed; ``None`` without any source (a class built
    at run time)."""
    try:
        # Dedented: a class defined inside a function must still compile after the imports.
        source = textwrap.dedent(inspect.getsource(cls))
        file_lines, _ = inspect.findsource(cls)
    except (OSError, TypeError):
        return None
    try:
        imports = _import_lines(ast.parse("".join(file_lines)))
    except (SyntaxError, ValueError):
        imports = []
    return "\n".join(imports) + "\n\n" + source if imports else source
