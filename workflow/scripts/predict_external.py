"""Rule predict_external: segment probabilities of a test cohort under one externally trained nEMGNet."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.predict import predict_cohort

# which network scored the cohort: with two sets (models/, models_pretrained/) the job-time table reads it here
logging.info("network: %s", snakemake.input.best)
pred = predict_cohort(snakemake.input.best, snakemake.input.segments, snakemake.input.index,
                      batch_size=int(snakemake.params.batch_size), device=str(snakemake.params.device),
                      num_threads=snakemake.threads)
pred.to_csv(snakemake.output.predictions, sep="\t", index=False, float_format="%.6g")
logging.info("%d segments of %d subjects scored", len(pred), pred["subject_id"].nunique())
