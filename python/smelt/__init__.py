"""smelt: an ML compiler, from Python.

Compile an ONNX or smelt model for a backend and run it on NumPy arrays::

    import numpy as np, smelt
    m = smelt.compile("model.onnx", backend="llvm")       # or "cranelift", "wgsl", "interp"
    out = m.run({"x": np.ones((1, 3, 224, 224), np.float32)})
    m.inputs    # [("x", "float32", [1, 3, 224, 224])]; symbolic dims by name ("N")

`compile` takes a path (``.onnx``, ``.smelt`` with its ``.safetensors``), the
bytes of an ONNX model or an ``onnx.ModelProto``. `from_torch` exports a
PyTorch module with ``torch.onnx.export`` first. `quantize`, `prune` and
`optimize` give a `Transformed` model (``report``, ``save``, ``compile``), as
the CLI's ``smelt quantize``, ``smelt prune`` and ``smelt opt``; so do `zoo`
(a built-in model with seeded random weights, ``smelt zoo``) and `import_onnx`
(``smelt import``). `bench` times a model as ``smelt bench`` does, and
``Model.save_library`` writes an ahead-of-time C library (``smelt compile
--emit lib``). Every error is a
`smelt.Error` (subclasses by kind) whose message is what the ``smelt`` CLI
prints. The GIL is released while a model compiles and runs, and a compiled
model may be used from several threads.
"""
import os
import tempfile

from ._smelt import (
    DeviceError,
    Error,
    InputError,
    Model,
    ModelError,
    OptionsError,
    RunError,
    UnsupportedError,
    __version__,
)
from ._smelt import Transformed
from ._smelt import bench as _bench
from ._smelt import compile as _compile
from ._smelt import import_onnx as _import_onnx
from ._smelt import optimize as _optimize
from ._smelt import prune as _prune
from ._smelt import quantize as _quantize
from ._smelt import zoo as _zoo
from ._smelt import zoo_models

__all__ = [
    "compile",
    "quantize",
    "prune",
    "optimize",
    "zoo",
    "zoo_models",
    "import_onnx",
    "bench",
    "from_torch",
    "Model",
    "Transformed",
    "Error",
    "ModelError",
    "UnsupportedError",
    "OptionsError",
    "InputError",
    "RunError",
    "DeviceError",
    "__version__",
]


def compile(model, backend="cranelift", opt_level=2, threads=1, schedule=None, tuning=None, dims=None):
    """Compile `model` for `backend`; returns a `Model` (as ``smelt run`` compiles).

    model:     a path (``.onnx``, or ``.smelt`` with weights in the
               ``.safetensors`` beside it), ONNX bytes, or an ``onnx.ModelProto``.
    backend:   ``cranelift`` (default: kernels JIT-compiled for this machine),
               ``llvm`` (LLVM JIT for this machine's vector width), ``wgsl``
               (compute shaders through wgpu on Vulkan) or ``interp`` (the
               reference interpreter).
    opt_level: 0–3, as the CLI's ``-O`` (2: e-graph rewrites and fusion).
    threads:   threads for the CPU backends' parallel loops.
    schedule:  schedule switches, ``"KEY=VALUE,..."`` as the CLI's ``--schedule``
               (e.g. ``"winograd=off,kc=256"``).
    tuning:    a tuning file written by ``smelt tune`` (the CLI): its entry for
               this CPU, backend and thread count sets the tuned convs' and
               matmuls' schedules. A file that cannot be used (corrupt, from
               another CPU or smelt) is a ``UserWarning`` and changes nothing.
    dims:      sizes of an ONNX model's symbolic dims by name (``{"N": 1,
               "H": 224}``), fixed at import, as the CLI's ``--dim``: for
               models whose dims cannot stay symbolic. Without it symbolic
               dims are sized by each run's inputs.

    ``Model.run(feeds)`` takes a dict of NumPy arrays by input name (or a list
    in the order of ``Model.inputs``) and returns a dict of NumPy arrays.
    """
    with _onnx_source(model, dims) as m:
        return _compile(m, backend=backend, opt_level=int(opt_level), threads=int(threads), schedule=schedule,
                        tuning=None if tuning is None else os.fspath(tuning), dims=_dims(dims))


def zoo(name, seed=0, **settings):
    """A built-in model with seeded random weights (as ``smelt zoo NAME --set
    KEY=VALUE``); returns a `Transformed` (``compile``, ``save``, ``text``;
    ``report`` holds the settings it was built with).

    ``zoo_models()`` lists the models, what they are, and their settings with
    defaults and help, e.g. ``smelt.zoo("resnet", depth=18, image=64)``.
    """
    return _zoo(name, settings=settings, seed=int(seed))


def import_onnx(model, dims=None, name=None):
    """An ONNX model imported as a smelt graph, as ``smelt import``: returns a
    `Transformed` whose ``save(out)`` writes ``out.smelt`` and
    ``out.safetensors`` and ``text()`` prints it. `dims` fixes symbolic dims
    by name; `name` names the graph (default: the file's stem)."""
    with _onnx_source(model, dims) as m:
        return _import_onnx(m, dims=_dims(dims), name=name)


def bench(model, backend="cranelift", opt_level=2, threads=1, runs=10, warmup=3, seed=0, dims=None, schedule=None,
          tuning=None, profile=False):
    """Time `model` as ``smelt bench`` does; returns a dict.

    The model is optimized, compiled and planned for seeded random inputs
    (symbolic dims sized by `dims`, the rest 1), run `warmup` times, then
    `runs` times. The dict holds ``median_ms``, ``min_ms``, ``mean_ms``,
    ``times_ms``, ``cpu_ms`` (the process's CPU time per run), ``optimize_ms``,
    ``compile_ms``, ``nodes_before``/``nodes_after``, ``peak_rss_bytes`` and,
    on the CPU backends, ``arena_bytes`` and ``constant_bytes``; with
    `profile`, ``profile``: each kernel call's median over `runs` more runs.
    """
    with _onnx_source(model, dims) as m:
        return _bench(m, backend=backend, opt_level=int(opt_level), threads=int(threads), runs=int(runs),
                      warmup=int(warmup), seed=int(seed), dims=_dims(dims), schedule=schedule,
                      tuning=None if tuning is None else os.fspath(tuning), profile=bool(profile))


def _dims(dims):
    if dims is None:
        return None
    if not hasattr(dims, "items"):
        raise OptionsError("error: dims is a dict of sizes by symbol name, e.g. {\"N\": 4}")
    return [(str(k), int(v)) for k, v in dims.items()]


class _onnx_source:
    """The model argument, with ONNX bytes given with `dims` written to a
    temporary file (dims are fixed when a file is imported)."""

    def __init__(self, model, dims):
        self.model = _model_arg(model)
        self.dir = None
        if dims and isinstance(self.model, bytes):
            self.dir = tempfile.TemporaryDirectory()
            path = os.path.join(self.dir.name, "model.onnx")
            with open(path, "wb") as f:
                f.write(self.model)
            self.model = path

    def __enter__(self):
        return self.model

    def __exit__(self, *exc):
        if self.dir is not None:
            self.dir.cleanup()
        return False


def _model_arg(model):
    if hasattr(model, "SerializeToString"):
        return model.SerializeToString()
    if isinstance(model, bytearray):
        return bytes(model)
    return model


def quantize(model, calibration=None, calibrate_random=None, mode="static", method="minmax", activations="u8", symmetric=False,
             per_tensor=False, reduce_range=False, exclude=(), budget=None, backend="cranelift", threads=1):
    """Post-training int8 quantization, as ``smelt quantize``; returns a `Transformed`.

    calibration:      a list of feeds (dicts of NumPy arrays by input name; an
                      array may stack many inputs along one more leading dim).
    calibrate_random: calibrate on N seeded random inputs instead.
    mode:             ``static`` (calibrated ranges) or ``dynamic`` (ranges from
                      each run's data; 8 random inputs measure the error when
                      no calibration is given).
    method:           ``minmax``, ``percentile[:P]``, ``entropy`` or ``mse``.
    activations:      ``u8`` or ``i8``; weights are i8 per output channel
                      unless ``per_tensor``; ``reduce_range`` gives 7-bit weights.
    exclude, budget:  node names kept in f32; the largest relative L2 output
                      error allowed (e.g. 0.01), the most sensitive layers
                      staying f32 until it holds.

    The result's ``report`` is a dict (per layer: precision, reason, scale…;
    the measured error and times); ``save(out)`` writes ``out.smelt`` and
    ``out.safetensors``; ``compile(backend=…)`` compiles it.
    """
    return _quantize(_model_arg(model), calibration=calibration, calibrate_random=calibrate_random, mode=mode, method=method,
                     activations=activations, symmetric=symmetric, per_tensor=per_tensor, reduce_range=reduce_range,
                     exclude=list(exclude), budget=budget, backend=backend, threads=threads)


def prune(model, sparsity, pattern="unstructured", scope="layer", exclude=(), budget=None, inputs=None, random=None,
          backend="cranelift", threads=1):
    """Magnitude pruning of the linear layers, as ``smelt prune``; returns a `Transformed`.

    sparsity: the share of each layer's weights made zero, in [0, 1).
    pattern:  ``unstructured``, ``block:RxC`` (R outputs × C inputs of the
              [out, in] weight, e.g. ``block:16x1``) or ``nm:N:M``.
    scope:    ``layer`` (the same sparsity in each) or ``global`` (one
              magnitude threshold over all layers).
    exclude, budget: node names left dense; the largest relative L2 output
              error allowed: the most sensitive layers are pruned less until
              it holds.
    inputs:   feeds that measure the error (default: 8 random inputs).

    Compiling the result, the optimizer runs each layer dense or sparse by cost.
    """
    return _prune(_model_arg(model), float(sparsity), pattern=pattern, scope=scope, exclude=list(exclude), budget=budget,
                  inputs=inputs, random=random, backend=backend, threads=threads)


def optimize(model, opt_level=2, backend="cranelift"):
    """The model after the ``-O{opt_level}`` pass pipeline, as ``smelt opt``;
    ``text()`` prints it, ``save(out)`` writes it."""
    return _optimize(_model_arg(model), opt_level=int(opt_level), backend=backend)


def from_torch(module, example_inputs, backend="cranelift", opt_level=2, threads=1, dynamic_axes=None, input_names=None, output_names=None):
    """Export a PyTorch module with ``torch.onnx.export`` (opset 17) and compile it.

    example_inputs: a tensor or a tuple of tensors, as ``torch.onnx.export`` takes.
    dynamic_axes, input_names, output_names: passed to ``torch.onnx.export``
    (names default to ``input_0``… and ``output_0``…).
    """
    try:
        import torch
    except ImportError as e:
        raise Error("error: smelt.from_torch needs PyTorch (pip install torch)") from e
    if not isinstance(example_inputs, tuple):
        example_inputs = (example_inputs,)
    input_names = input_names or [f"input_{i}" for i in range(len(example_inputs))]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.onnx")
        with torch.no_grad():
            torch.onnx.export(module, example_inputs, path, input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
        return compile(path, backend=backend, opt_level=opt_level, threads=threads)
