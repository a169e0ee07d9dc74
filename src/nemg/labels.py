"""The label vocabulary every stage shares: diagnosis classes, their probability columns, muscle locations and the
study's metric names.

Defined here once because their order is a contract between files: the network's output units, the
``p_<class>`` columns of every predictions table, the stage-2 features and the metric tables are all written
and read in this order, so two copies that drifted apart would mislabel results without any error. No imports,
so every conda env (including the torch-free plotting and baseline ones) can use it.
"""
from __future__ import annotations

CLASSES = ("normal", "myopathy", "neuropathy")
# a list, not a tuple: pandas reads ``df[PROB_COLS]`` as a column selection only when given a list
PROB_COLS = [f"p_{c}" for c in CLASSES]
# class name -> output unit / label index (the integer targets of training and of per-class arrays)
CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}
LOCATIONS = ("proximal", "distal")
# the study's Table 2: accuracy, then the macro averages of the one-vs-rest metrics
METRICS = ("accuracy", "precision", "recall", "specificity", "f1")

__all__ = ["CLASSES", "CLASS_INDEX", "LOCATIONS", "METRICS", "PROB_COLS"]
