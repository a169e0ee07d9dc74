"""nemg: needle-EMG diagnosis pipeline (nEMGNet + divide-and-vote)."""
__version__ = "0.1.0"
