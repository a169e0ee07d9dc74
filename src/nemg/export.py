"""A bundle's networks as TorchScript or ONNX (``nemg export MODEL_DIR --format torchscript|onnx``).

Only the CNN is exported: segment ``[batch, window_samples]`` float32 microvolts in, 3 logits out (class order
of model.json). Loading, trimming, resampling, segmentation and the stage-2 vote stay in nemg (or must be
re-implemented from model.json's settings by whoever embeds the network). ONNX needs the ``onnx`` extra
(``pip install 'nemg[onnx]'``); the batch dimension is dynamic in both formats.
"""
from __future__ import annotations

import warnings
from pathlib import Path

FORMATS = {"torchscript": ".pt", "onnx": ".onnx"}
INPUT_NAME, OUTPUT_NAME = "segments", "logits"
#: ONNX operator set of the export (onnxruntime 1.32 runs it)
OPSET = 18


def export_network(net, window: int, fmt: str, path: str | Path) -> Path:
    """Write one eval-mode nEMGNet as ``fmt`` to ``path``."""
    import torch

    path = Path(path)
    example = torch.zeros(2, window)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "torchscript":
        # trace, not script: the forward is a fixed graph, and tracing needs no annotations in nemg.model.
        # torch 2.13 marks TorchScript deprecated (ONNX is the durable format); the warning says nothing new here
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(net.eval(), example)
        traced.save(str(tmp))
    elif fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            raise ImportError("ONNX export needs the onnx extra: pip install 'nemg[onnx]'") from None
        batch = torch.export.Dim("batch", min=1)
        prog = torch.onnx.export(net.eval(), (example,), dynamo=True, input_names=[INPUT_NAME],
                                 output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), opset_version=OPSET,
                                 verbose=False)
        prog.save(str(tmp))
    else:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    tmp.replace(path)
    return path


def export_bundle(model_dir: str | Path, fmt: str, out_dir: str | Path | None = None) -> list[Path]:
    """Every member of a (verified) bundle as ``<out_dir>/<run_id><ext>``; default out_dir MODEL_DIR/export/."""
    from .bundle import load_bundle

    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    bundle = load_bundle(model_dir)
    out = Path(out_dir) if out_dir is not None else bundle.path / "export"
    out.mkdir(parents=True, exist_ok=True)
    window = int(bundle.meta["model"]["window_samples"])
    return [export_network(net, window, fmt, out / f"{run_id}{FORMATS[fmt]}")
            for run_id, net in bundle.networks().items()]


def load_exported(path: str | Path):
    """A callable ``f(np.ndarray [B, window] float32) -> np.ndarray [B, 3] logits`` for an exported file."""
    import numpy as np

    path = Path(path)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda x: sess.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x, np.float32)})[0]
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = torch.jit.load(str(path), map_location="cpu")

    def run(x):
        with torch.no_grad():
            return mod(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()

    return run


__all__ = ["FORMATS", "export_bundle", "export_network", "load_exported"]
