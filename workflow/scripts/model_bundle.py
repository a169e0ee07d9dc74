"""Rule model_bundle: the external-validation ensemble (or the CV's networks), its stage 2 and model card as one
bundle."""
import logging
from pathlib import Path

from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

from nemg.bundle import build_bundle
from nemg.external import median_of_levels, signal_store_levels_and_skewness
from nemg.model_card import write_card

inp, par = snakemake.input, snakemake.params
levels, skewness = signal_store_levels_and_skewness(inp.signals, inp.signals_index)
meta = build_bundle(
    Path(snakemake.output.model_json).parent,
    checkpoints=dict(zip(par.run_ids, inp.best)),
    predictions=dict(zip(par.run_ids, inp.predictions)),
    split_tsv=inp.split, subjects_tsv=inp.subjects, recordings_tsv=inp.recordings,
    segments_index_tsv=inp.segments_index, signals_index_tsv=inp.signals_index,
    preprocess=par.preprocess, stage2=par.stage2, eval_batch_size=par.eval_batch_size,
    cohort_name=snakemake.wildcards.cohort, git_commit=par.git_commit, config_files=par.config_files,
    pretraining=par.pretraining, external_start=par.external_start,
    amplitude_reference_uv=median_of_levels(levels, inp.signals), amplitude_levels_uv=levels,
    amplitude_skewness=skewness,
    members_kind=par.members,
    combined=None if par.combined is None else {
        "features": inp.qemg[0], "names": inp.qemg[1], **par.combined},
)
write_card(snakemake.output.card, meta, source=par.source, table2_tsv=inp.get("table2"),
           per_class_tsv=inp.get("per_class"), external_tsv=inp.get("external"))
logging.info("bundle of %d members: %s", len(meta["members"]), [m["run_id"] for m in meta["members"]])
