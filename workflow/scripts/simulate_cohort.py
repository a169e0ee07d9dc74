"""Rule simulate_cohort: the default cohort from nemg.simulate (48 kHz WFDB + sample sheets)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from pathlib import Path

from nemg.simulate import simulate_cohort
from nemg.tables import subset_sheets

out_dir = Path(snakemake.output.subjects).parent
paths = simulate_cohort(snakemake.params.sim, out_dir, snakemake.params.seed, n_jobs=snakemake.threads)
if snakemake.params.keep or snakemake.params.where:
    # the simulated physicians rated every simulated recording: their rows of the left-out ones go too
    subset_sheets(paths["subjects"], paths["recordings"], snakemake.params.keep,
                  recordings_where=snakemake.params.where, ratings_tsv=paths["ratings"])
