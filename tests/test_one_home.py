"""One home per fact: the label vocabulary (nemg.labels) and the run-id format (nemg.folds) are spelled once.

A second copy of the class order or of a run-id format drifts unnoticed (a reordered tuple mislabels every
probability column; a changed id format breaks the rules' wildcards), so these scan the code for copies.
"""
import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = [p for d in ("src", "workflow", "scripts", "benchmarks") for p in sorted((REPO / d).rglob("*"))
        if p.suffix in (".py", ".smk")] + [REPO / "Snakefile"]
LABELS = REPO / "src" / "nemg" / "labels.py"
FOLDS = REPO / "src" / "nemg" / "folds.py"


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO))


def test_label_names_are_assigned_only_in_labels_module():
    names = {"CLASSES", "CLASS_ORDER", "PROB_COLS", "LOCATIONS", "METRICS"}
    where = {}
    for p in CODE:
        if p.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) else []
            for t in targets:
                if isinstance(t, ast.Name) and t.id in names:
                    where.setdefault(t.id, []).append(f"{_rel(p)}:{node.lineno}")
    assert set(where) == {"CLASSES", "PROB_COLS", "LOCATIONS", "METRICS"}, where
    assert all(len(v) == 1 and v[0].startswith(f"{_rel(LABELS)}:") for v in where.values()), where


def test_label_values_are_spelled_only_in_labels_module():
    literals = [r"""["']normal["'],\s*["']myopathy["'],\s*["']neuropathy["']""",
                r"""["']proximal["'],\s*["']distal["']""",
                r"""["']accuracy["'],\s*["']precision["'],\s*["']recall["']""",
                r"""["']p_normal["']"""]
    hits = [f"{_rel(p)}: {m.group(0)}" for p in CODE if p != LABELS for rx in literals
            for m in re.finditer(rx, p.read_text())]
    assert not hits, "import these from nemg.labels instead:\n" + "\n".join(hits)


def test_run_ids_are_formatted_and_parsed_only_in_folds_module():
    # an f-string piece (_s{...}), a concatenated field (+ "_s") or a regex on one (_s\d), outside folds.py;
    # ``ext_s<seed>`` in prose is fine
    rx = re.compile(r"""_[sroi]\{|\+\s*["']_[sroi]["']|_[sroi]\\d|(?:nested|rkfold|ext)_s(?:\d|\()""")
    hits = [f"{_rel(p)}:{i}: {line.strip()}" for p in CODE if p != FOLDS
            for i, line in enumerate(p.read_text().splitlines(), 1) if rx.search(line)]
    assert not hits, "use nemg.folds.run_id / parse_run_id / run_id_regex:\n" + "\n".join(hits)
