"""Rule manifest: the run's config, code commit, package versions and the SHA-256 of every output."""
import logging

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.manifest import write_manifest

paths = write_manifest(snakemake.output.files.rsplit("/", 1)[0], snakemake.input, snakemake.config,
                       snakemake.params.repo, versions=snakemake.params.versions)
logging.info("manifest of %d inputs written: %s", len(snakemake.input), ", ".join(map(str, paths.values())))
