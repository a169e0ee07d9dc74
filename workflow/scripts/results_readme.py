"""Rule results_readme: map every table and figure of the study to its file."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.results_index import write_results_readme

write_results_readme(snakemake.params.entries, snakemake.output.readme, cohort=snakemake.config["cohort"]["name"],
                     note=snakemake.params.note)
