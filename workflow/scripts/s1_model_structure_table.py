"""Rule s1_model_structure_table: nEMGNet's layer groups (shapes, parameters, FLOPs), configured and paper."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.explain import structure_tables

table = structure_tables(snakemake.params.model, snakemake.params.n_samples)
table.to_csv(snakemake.output[0], sep="\t", index=False, float_format="%.6g")
logging.info("\n%s", table.to_string(index=False))
