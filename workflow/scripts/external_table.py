"""Rule external_table: every test cohort's summary in one table (TSV + HTML for the report)."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.baseline import write_comparison_html
from nemg.tables import external_display_table


def read(p):
    try:
        return pd.read_csv(p, sep="\t")
    except pd.errors.EmptyDataError:  # a run without baseline arms has no paired tests
        return pd.DataFrame()


summary = pd.concat([read(p) for p in snakemake.input.summaries], ignore_index=True)
summary.to_csv(snakemake.output.tsv, sep="\t", index=False, float_format="%.6g")
tests = pd.concat([read(p) for p in snakemake.input.tests], ignore_index=True)
tables = [("External validation: trained on every patient of one cohort, tested on another", external_display_table(summary))]
if len(tests):
    tables.append(("Paired tests on the test cohort's patients (consensus calls)", tests))
write_comparison_html(tables, snakemake.output.html,
                      note="Consensus: mean class probabilities over the models (seeds) per patient; bootstrap "
                           "CIs resample test patients. Stage 2 is fit on the training cohort's validation "
                           "patients; the test cohort is preprocessed with the training run's settings.")
logging.info("\n%s", external_display_table(summary).to_string())
