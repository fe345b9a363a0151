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
