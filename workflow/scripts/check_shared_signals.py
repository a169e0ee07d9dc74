"""Rule check_shared_signals: fail the workflow if two subjects' recordings share identical windows."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.shared_signals import check_store_file

check_store_file(snakemake.input.segments, snakemake.input.index, snakemake.output[0])
