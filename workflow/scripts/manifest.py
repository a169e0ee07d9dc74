"""Rule manifest: the run's config, code commit, package versions and the SHA-256 of every output."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.manifest import write_manifest
from nemg.report_context import CONFIG_KEY

# the config as the user's files give it: without the report's landing-page context, which the workflow adds when
# it is parsed (before this run's cohort exists on a first run, so its counts would be 0, and then another
# manifest than a rerun's for the same run; the commit is in run.yaml)
config = {k: v for k, v in snakemake.config.items() if k != CONFIG_KEY}
paths = write_manifest(snakemake.output.files.rsplit("/", 1)[0], snakemake.input, config,
                       snakemake.params.repo, versions=snakemake.params.versions)
logging.info("manifest of %d inputs written: %s", len(snakemake.input), ", ".join(map(str, paths.values())))
