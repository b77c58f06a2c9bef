"""The knob reference, generated from the knob fields of kgahp.config: docs/configuration.md
and condor_config.d/50-kgahp.conf (`kgahp show-config --write-docs .` rewrites both; tests/docs
keeps them in step).
"""

from __future__ import annotations

import re

from kgahp.config import KNOBS, PREFIX


def config_snippet() -> str:
    """The text of condor_config.d/50-kgahp.conf (a test keeps the shipped file in step)."""
    lines = [
        "# kgahp: the Kubernetes GAHP for HTCondor.",
        "# Drop this file into HTCondor's (or HTCondor-CE's) config.d and adjust.",
        "# Jobs use it with:  universe = grid   and   grid_resource = batch kubernetes",
        "# (exactly that: extra words after 'kubernetes' switch the gridmanager to remote mode).",
        "",
        "KUBERNETES_GAHP = $(BIN)/kgahp",
        "",
        "# How many jobs the gridmanager keeps submitted, and how fast it polls them.",
        "# kgahp answers status from a watch-fed cache, so a higher probe rate costs the",
        "# cluster nothing.",
        "#GRIDMANAGER_MAX_SUBMITTED_JOBS_PER_RESOURCE_BATCH = 1000",
        "#GRIDMANAGER_JOB_PROBE_RATE_BATCH = 5",
        "",
        "# Every kgahp knob, with its default. Uncomment to change.",
    ]
    for knob in KNOBS:
        lines.append(f"# {knob.help}")
        lines.append(f"#{PREFIX}{knob.name} = {knob.default}".rstrip())
    return "\n".join(lines) + "\n"


SECTION_TITLES: dict[str, str] = {
    "kube": "Cluster access",
    "server": "The GAHP process",
    "pod": "Pods, resources and policy",
    "lifecycle": "Job states and timing",
    "transfer": "Files and credentials",
    "provision": "Pilots on demand (kgahp provision)",
}
REFERENCE_FILES = ("docs/configuration.md", "condor_config.d/50-kgahp.conf")
REGENERATE_COMMAND = "kgahp show-config --write-docs ."

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def markdown_cell(text: str) -> str:
    """Plain text made literal in a Markdown table cell, for MkDocs and GitHub alike (angle
    brackets become entities: Python-Markdown keeps a backslash written before them)."""
    text = _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _md_code(text: str) -> str:
    return f"`{text}`" if text else "(empty)"


_REFERENCE_INTRO = """\
kgahp reads {count} knobs. Each is an ordinary HTCondor configuration setting named
`{prefix}<NAME>`, read through the configuration of the schedd that starts the gridmanager (for
an HTCondor-CE, the CE's configuration). So:

- set a knob in a file under `config.d` (start from `condor_config.d/50-kgahp.conf`, which lists
  every knob below with its default, commented out);
- `condor_config_val -dump {prefix}` (`condor_ce_config_val` on a CE) shows what is set;
- `_CONDOR_{prefix}<NAME>` in the environment overrides a knob, as for any HTCondor setting;
- `kgahp show-config` prints the values kgahp itself ends up with, and names the knob at fault
  when a value cannot be used.

kgahp reads its knobs once, when the gridmanager starts it. A bad value does not stop the GAHP:
every request is then answered with a sentence naming the knob, and the gridmanager shows that
sentence as the reason the resource is down.

An empty default is shown as (empty). Sizes (MiB, KiB or bytes, as each knob says) and times
(seconds) are plain numbers."""


def knobs_markdown() -> str:
    """The text of docs/configuration.md: every knob, its default and meaning, by section."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from the knob fields in kgahp/config/settings.py: do not edit by hand.",
        f"     After changing a knob, run `{REGENERATE_COMMAND}` in the checkout (it",
        "     rewrites this page and condor_config.d/50-kgahp.conf). -->",
        "",
        *_REFERENCE_INTRO.format(count=len(KNOBS), prefix=PREFIX).splitlines(),
    ]
    for section, title in SECTION_TITLES.items():
        lines += ["", f"## {title}", "", "| Knob | Default | Meaning |", "|---|---|---|"]
        for knob in KNOBS:
            if knob.section != section:
                continue
            lines.append(f"| `{PREFIX}{knob.name}` | {_md_code(knob.default)} "
                         f"| {markdown_cell(knob.help)} |")
    return "\n".join(lines) + "\n"


def reference_texts() -> dict[str, str]:
    """Each generated file (path relative to a checkout) and the text it must hold."""
    return {REFERENCE_FILES[0]: knobs_markdown(), REFERENCE_FILES[1]: config_snippet()}
