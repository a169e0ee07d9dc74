"""Rule fig3_optimize_inputs: class-maximising inputs of the chosen runs' nEMGNets (Fig 3's numbers)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.explain import activation_maximization

activation_maximization(
    list(snakemake.input.checkpoints),
    snakemake.input.segments,
    snakemake.input.index,
    snakemake.output.signals,
    snakemake.output.summary,
    fs_hz=snakemake.params.fs_hz,
    am=snakemake.params.am,
    device=snakemake.params.device,
    num_threads=snakemake.threads,
)
