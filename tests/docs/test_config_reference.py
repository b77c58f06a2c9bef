"""The knob reference (docs/configuration.md) and the shipped config snippet
(condor_config.d/50-kgahp.conf) are generated from the knob fields in
kgahp/config/settings.py and may not drift.

When a knob is added, changed or removed, these fail and name the one command that rewrites
both files."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest

from kgahp.cli import main
from kgahp.config import KNOBS, PREFIX
from kgahp.knob_reference import (
    REFERENCE_FILES,
    REGENERATE_COMMAND,
    markdown_cell,
    reference_texts,
)

REPO = Path(__file__).resolve().parents[2]
FIX = (f"regenerate both files with `.venv/bin/{REGENERATE_COMMAND}` in the checkout "
       f"(or `{REGENERATE_COMMAND}` with the venv active), then commit them")


def stale(root: Path) -> list[str]:
    """The generated files under `root` that do not hold what the knob table gives."""
    return [path for path, text in reference_texts().items()
            if not (root / path).is_file()
            or (root / path).read_text(encoding="utf-8") != text]


def test_generated_files_match_the_knob_table() -> None:
    out_of_date = stale(REPO)
    assert not out_of_date, f"{', '.join(out_of_date)} out of date with KNOBS: {FIX}"


def test_snippet_lists_exactly_the_knobs_with_their_defaults() -> None:
    text = (REPO / "condor_config.d" / "50-kgahp.conf").read_text(encoding="utf-8")
    listed = re.findall(rf"^#{PREFIX}([A-Z0-9_]+) =[ ]?(.*)$", text, re.MULTILINE)
    assert listed == [(k.name, k.default) for k in KNOBS], FIX


def test_reference_page_lists_exactly_the_knobs_with_their_defaults() -> None:
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = re.findall(rf"^\| `{PREFIX}([A-Z0-9_]+)` \| (`[^`]*`|\(empty\)) \|", text,
                      re.MULTILINE)
    assert rows == [(k.name, f"`{k.default}`" if k.default else "(empty)") for k in KNOBS], FIX
    for knob in KNOBS:
        assert knob.help.split()[0] in text


def test_the_named_command_rewrites_both_files(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for path in REFERENCE_FILES:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, tmp_path / path)
    (tmp_path / REFERENCE_FILES[0]).write_text("# stale\n", encoding="utf-8")
    (tmp_path / REFERENCE_FILES[1]).unlink()
    assert stale(tmp_path) == list(REFERENCE_FILES)

    command = REGENERATE_COMMAND.split()
    assert command[:1] == ["kgahp"] and command[-1] == "."
    assert main([*command[1:-1], str(tmp_path)]) == 0
    assert stale(tmp_path) == []
    assert capsys.readouterr().out.count("rewritten") == 2


def test_the_command_writes_nothing_outside_a_checkout(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-config", "--write-docs", str(tmp_path)]) == 1
    assert list(tmp_path.iterdir()) == []
    assert "not a kgahp checkout" in capsys.readouterr().err


@pytest.mark.parametrize("flag, path", [("--markdown", REFERENCE_FILES[0]),
                                        ("--snippet", REFERENCE_FILES[1])])
def test_show_config_prints_each_generated_file(flag: str, path: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-config", flag]) == 0
    assert capsys.readouterr().out == reference_texts()[path]


def test_show_config_refuses_an_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show-config", "--html"]) == 2
    assert "unexpected '--html'" in capsys.readouterr().err


@pytest.mark.parametrize("text", [
    "For TRANSFER_MODE = shared: 'pvc:<claim>' or 'hostPath:<dir>'",
    "a | b, *not emphasis*, _nor_ this, [no link](x), `no code`, back\\slash, a < b > c",
    *(k.help for k in KNOBS),
])
def test_a_knob_help_reads_the_same_on_the_site(text: str) -> None:
    import markdown  # comes with mkdocs (the test extra)
    rendered = markdown.markdown(f"| h |\n|---|\n| {markdown_cell(text)} |",
                                 extensions=["tables"])
    cell = re.search(r"<td>(.*)</td>", rendered, re.DOTALL)
    assert cell is not None
    assert html.unescape(cell.group(1)) == text


def test_each_settings_field_is_one_knob_declared_once() -> None:
    """A field without knob(...) would never be configurable; a knob's text default must give
    the field's default, so the reference shows what kgahp really uses."""
    from dataclasses import fields

    from kgahp.config import SECTIONS, Settings, settings_from_mapping

    declared = [(section, f.name) for section, cls in SECTIONS.items() for f in fields(cls)]
    assert [(k.section, k.attr) for k in KNOBS] == declared
    assert len({k.name for k in KNOBS}) == len(KNOBS)
    unset = settings_from_mapping({})
    for knob in KNOBS:
        assert getattr(getattr(Settings(), knob.section), knob.attr) == knob.parse(knob.default)
        if knob.name not in ("RUN_AS_USER", "RUN_AS_GROUP"):   # follow TRANSFER_MODE = shared
            assert getattr(getattr(unset, knob.section), knob.attr) == knob.parse(knob.default)
        assert not knob.choices or knob.parse(knob.default) in knob.choices, knob.name
