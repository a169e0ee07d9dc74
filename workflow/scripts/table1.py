"""Rule table1: demographics per class with Shapiro-Wilk-chosen tests (the study's Table 1)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.stats import table1
from nemg.tables import write_table

subjects = pd.read_csv(snakemake.input.subjects, sep="\t", dtype={"subject_id": str, "sex": str})
subjects["sex"] = subjects["sex"].where(subjects["sex"].isin(["F", "M"]))
write_table(table1(subjects), snakemake.output.tsv, snakemake.output.html, "Table 1: demographics",
            snakemake.params.note)
