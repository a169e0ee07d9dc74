"""Rule s1_fig_model_structure: S1 Fig from the layer table."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

import pandas as pd

from nemg.model_figures import s1_fig_model_structure, save

save(s1_fig_model_structure(pd.read_csv(snakemake.input.table, sep="\t")),
     [snakemake.output.png, snakemake.output.pdf])
