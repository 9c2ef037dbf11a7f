"""The first host of a SLURM host list, as ``scontrol show hostnames LIST | head -n1`` prints it.

The one parser of node lists: ``nn_handler_run`` derives its rendezvous endpoint from it, and
Lightning's ``SLURMEnvironment`` is given it for ``MASTER_ADDR`` (Lightning's own
``resolve_root_node_address`` keeps only the text before a second bracket, so
``c[01-02]n[1-2]`` gives it ``c01`` instead of ``c01n1``).
"""

from __future__ import annotations

import re

__all__ = ["first_host"]

# One bracket expression: the first item of a "01-02,05" list, and the text around it.
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


def _first_item(match: re.Match[str]) -> str:
    first = match.group(1).split(",")[0].split("-")[0].strip()
    if not first:
        raise ValueError(f"empty range {match.group(0)!r}")
    return first


def first_host(nodelist: str) -> str:
    """The first host name of a SLURM host list.

    ``"node1"`` → ``node1``; ``"gpu[03-05,07],cpu1"`` → ``gpu03``; ``"c[01-02]n[1-2]"`` →
    ``c01n1``; ``"a,b"`` and ``"a b"`` → ``a``. Each bracket expression contributes its first
    item, zero padding kept (SLURM expands ``[01-02]`` to ``01``, ``02``).

    Raises:
        ValueError: ``nodelist`` names no host or has unbalanced brackets.
    """
    nodelist = nodelist.strip()
    depth = 0
    end = len(nodelist)
    for i, char in enumerate(nodelist):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            break
        if depth == 0 and (char == "," or char.isspace()):
            end = i
            break
    head = nodelist[:end].strip()
    try:
        host = _BRACKET.sub(_first_item, head)
    except ValueError:
        host = ""
    if not host or any(c in host for c in "[],") or any(c.isspace() for c in host):
        raise ValueError(
            f"Cannot read a host name from the SLURM node list {nodelist!r}; expected a list "
            "such as 'node[01-04],gpu7' (or set MASTER_ADDR to the first node's host name)."
        )
    return host
