"""Rule external_gain: one amplitude factor bringing a test cohort's typical RMS (and, with median_rms_polarity,
its polarity) to the training cohort's."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.external import amplitude_gain

inp = snakemake.input
gain = amplitude_gain(inp.train_signals, inp.train_index, inp.test_signals, inp.test_index,
                      calibration=snakemake.params.calibration)
gain.to_csv(snakemake.output.gain, sep="\t", index=False, float_format="%.6g")
logging.info("\n%s", gain.to_string(index=False))
