"""Rule baseline_features: classical quantitative-EMG features of every segment (nemg.features)."""
from nemg.logs import log_to_file

log_to_file(snakemake.log[0])

import pandas as pd

from nemg.features import extract_features

rates = sorted(set(pd.read_csv(snakemake.input.signals_index, sep="\t")["fs_hz"].astype(float)))
if len(rates) != 1:
    raise ValueError(f"{snakemake.input.signals_index}: segments at several sampling rates {rates}")
extract_features(snakemake.input.segments, snakemake.output.features, snakemake.output.names, fs=rates[0],
                 params=dict(snakemake.params.features))
