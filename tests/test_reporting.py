"""The pieces the three reports share (qwenlong_verl/reporting.py): the number formatter in each report's style, the
Markdown table, the md/json/png trio written whole with credentials masked."""

from __future__ import annotations

import json

import pytest

from qwenlong_verl.reporting import MISSING, ReportFiles, fmt, markdown_table, write_report_files


@pytest.mark.parametrize("value, kwargs, text", [
    # the evaluation's percentages: one decimal
    (62.5, {"digits": 1}, "62.5"), (100.0, {"digits": 1}, "100.0"), (None, {"digits": 1}, MISSING),
    # the pipeline's: three decimals, whole numbers of 1 or more bare (steps, counts), small ones not
    (0.875, {"whole_bare": True}, "0.875"), (12.0, {"whole_bare": True}, "12"), (-3.0, {"whole_bare": True}, "-3"),
    (0.0, {"whole_bare": True}, "0.000"), (0.4, {"digits": 2, "whole_bare": True}, "0.40"),
    # the sweep's: four significant digits
    (0.123456, {"digits": 4, "significant": True}, "0.1235"), (12345.0, {"digits": 4, "significant": True}, "1.234e+04"),
    (2.0, {"digits": 4, "significant": True}, "2"),
    # not floats: as they are (an int count, a swept override's text, a bool)
    (7, {}, "7"), ("1e-6", {"digits": 4, "significant": True}, "1e-6"), (True, {"whole_bare": True}, "True"),
    (float("nan"), {"whole_bare": True}, "nan"),
])
def test_fmt_writes_each_reports_numbers(value, kwargs, text):
    assert fmt(value, **kwargs) == text


def test_markdown_table_escapes_cells_and_aligns_numbers():
    lines = markdown_table(["name", "a|b", "n"], [["x", "line1\nline2", "1.0"], ["**Average**", "c|d", 2]],
                           right=[2])
    assert lines == ["| name | a\\|b | n |", "|---|---|---:|", "| x | line1 line2 | 1.0 |",
                     "| **Average** | c\\|d | 2 |"]
    assert markdown_table(["a"], [])[1] == "|---|"
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        markdown_table(["a", "b"], [["only one"]])


def test_write_report_files_masks_credentials_and_writes_each_file_whole(tmp_path):
    report = {"judge": "http://user:hunter2pw@judge.local/v1", "score": 0.5, "when": tmp_path, "odd": "a\udc80b"}
    markdown = "# r\n\n- judge: http://user:hunter2pw@judge.local/v1, +trainer.wandb_api_key=abcdef123\n"
    drawn = []
    paths = write_report_files(tmp_path / "out", report, markdown, ReportFiles("r.md", "r.json", "r.png"),
                               plot=lambda p: (drawn.append(p), p.write_bytes(b"\x89PNG fake")), json_indent=1)
    assert set(paths) == {"md", "json", "png"} and paths["png"].read_bytes() == b"\x89PNG fake"
    assert drawn and drawn[0] != paths["png"]  # drawn into a temporary file, renamed into place
    texts = [paths["md"].read_text(encoding="utf-8"), paths["json"].read_text(encoding="utf-8")]
    assert not any("hunter2pw" in t or "abcdef123" in t for t in texts)
    data = json.loads(texts[1])
    assert data["judge"] == "http://***@judge.local/v1" and data["when"] == str(tmp_path)  # str() for a Path
    assert data["odd"] == "a\ufffdb" and texts[1].endswith("}\n")  # a lone surrogate cannot reach the file

    # no plot asked for: no PNG; a plot that fails leaves no half-written PNG behind
    only = write_report_files(tmp_path / "two", report, markdown, ReportFiles("r.md", "r.json", "r.png"))
    assert set(only) == {"md", "json"} and not (tmp_path / "two" / "r.png").exists()

    def broken(path):
        path.write_bytes(b"half")
        raise RuntimeError("matplotlib died")

    with pytest.raises(RuntimeError, match="matplotlib died"):
        write_report_files(tmp_path / "out", report, markdown, ReportFiles("r.md", "r.json", "r.png"), plot=broken)
    assert paths["png"].read_bytes() == b"\x89PNG fake"  # the previous chart, not "half"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.json", "r.md", "r.png"]  # no temporary left
