"""Rule fig3_optimize_inputs: class-maximising inputs of the chosen runs' nEMGNets (Fig 3's numbers)."""
import logging
import sys

sys.stderr = open(snakemake.log[0], "w")
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

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
