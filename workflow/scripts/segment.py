"""Rule segment: fixed windows of every resampled recording (memory-mappable store) and the S1 table."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.segment import read_gain, segment_store
from nemg.tables import write_s1_table

# quoted by any later reader that finds the store damaged
REBUILD = f"snakemake --cores all --force {snakemake.output.segments} (with this run's --configfile)"

# an amplitude-calibrated external test cohort carries its gain file; every other cohort is left as recorded
gain = read_gain(snakemake.input.gain)
segment_store(
    snakemake.input.signals,
    snakemake.input.index,
    snakemake.params.window_s,
    snakemake.params.hop_s,
    snakemake.output.segments,
    snakemake.output.index,
    gain=gain,
    rebuild=REBUILD,
)
logging.info("S1 table:\n%s", write_s1_table(snakemake.input.index, snakemake.output.index, snakemake.output.s1))
