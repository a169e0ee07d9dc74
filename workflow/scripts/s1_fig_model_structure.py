"""Rule s1_fig_model_structure: S1 Fig from the layer table."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.model_figures import s1_fig_model_structure, save

save(s1_fig_model_structure(pd.read_csv(snakemake.input.table, sep="\t")),
     [snakemake.output.png, snakemake.output.pdf])
