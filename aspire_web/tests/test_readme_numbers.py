"""README tables of benchmark numbers are what bench/results give (bench/readme_tables.py renders
them): a number typed by hand, or a result file re-measured without re-rendering, fails here."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "bench" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_tables_are_rendered_from_the_results():
    tables = _tables()
    readme = (ROOT / "README.md").read_text()
    assert readme == tables.render(readme), "run: python bench/readme_tables.py"


def test_a_changed_number_is_caught():
    tables = _tables()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- bench:reference_programs -->")
    bold = readme.index("**", start)
    tampered = readme[: bold + 2] + "9" + readme[bold + 3 :]
    assert tables.render(tampered) != tampered


def test_libero_pro_and_transfer_blocks_render_from_their_files_or_say_not_measured(tmp_path, monkeypatch):
    """The LIBERO-Pro and transfer blocks say "not measured yet" while their file is missing and show the
    file's numbers once it exists (a row's held-out 0.37 and a zero-shot 0.42 appear in the block)."""
    import json
    import sys

    sys.path.insert(0, str(ROOT))
    from bench import libero_pro

    tables = _tables()
    readme = (
        "<!-- bench:libero_pro -->\n<!-- /bench:libero_pro -->\n<!-- bench:transfer -->\n<!-- /bench:transfer -->\n"
    )
    for name in ("libero_pro", "transfer"):
        monkeypatch.setitem(tables.TABLES, name, (tmp_path / f"{name}.json", tables.TABLES[name][1]))
    for name in [n for n in tables.TABLES if n not in ("libero_pro", "transfer")]:
        monkeypatch.delitem(tables.TABLES, name)
    empty = tables.render(readme)
    assert "Not measured yet: no `bench/results/libero_pro.json`" in empty
    assert "Not measured yet: no `bench/results/transfer.json`" in empty

    rows = [
        {
            "suite": "libero_goal",
            "family": "goal",
            "perturbation": None,
            "index": 0,
            "heldout": 0.37,
            "first_candidate_debug": 0.2,
            "final_debug": 0.4,
        },
        {
            "suite": "libero_goal_swap",
            "family": "goal",
            "perturbation": "swap",
            "index": 0,
            "heldout": 0.11,
            "first_candidate_debug": 0.1,
            "final_debug": 0.1,
        },
    ]
    (tmp_path / "libero_pro.json").write_text(
        json.dumps(
            {
                "commit": "abc",
                "protocol": {"k": 8, "max_rounds": 5},
                "tasks": rows,
                "aggregates": libero_pro.aggregate(rows),
            }
        )
    )
    (tmp_path / "transfer.json").write_text(
        json.dumps(
            {
                "commit": "abc",
                "protocol": {"k": 8},
                "sources": [],
                "evaluations": [],
                "summary": [
                    {
                        "suite": "libero_10",
                        "library_size": 0,
                        "skills": 0,
                        "tasks": 10,
                        "episodes": 500,
                        "mean_success": 0.42,
                    }
                ],
            }
        )
    )
    full = tables.render(readme)
    assert "**0.37**" in full and "**0.11**" in full and "**0.42**" in full
    assert "Not measured yet" not in full


def test_the_renderer_runs_as_the_readme_says_from_any_directory(tmp_path):
    """`python bench/readme_tables.py --check` is how a user checks the tables (it imports bench.summary)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "readme_tables.py"), "--check"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
