"""smelt: an ML compiler, from Python.

Compile an ONNX or smelt model for a backend and run it on NumPy arrays::

    import numpy as np, smelt
    m = smelt.compile("model.onnx", backend="llvm")       # or "cranelift", "wgsl", "interp"
    out = m.run({"x": np.ones((1, 3, 224, 224), np.float32)})
    m.inputs    # [("x", "float32", [1, 3, 224, 224])]; symbolic dims by name ("N")

`compile` takes a path (``.onnx``, ``.smelt`` with its ``.safetensors``), the
bytes of an ONNX model or an ``onnx.ModelProto``. `from_torch` exports a
PyTorch module with ``torch.onnx.export`` first. Every error is a
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
from ._smelt import compile as _compile

__all__ = [
    "compile",
    "from_torch",
    "Model",
    "Error",
    "ModelError",
    "UnsupportedError",
    "OptionsError",
    "InputError",
    "RunError",
    "DeviceError",
    "__version__",
]

BACKENDS = ("cranelift", "llvm", "wgsl", "interp")


def compile(model, backend="cranelift", opt_level=2, threads=1):
    """Compile `model` for `backend`; returns a `Model`.

    model:     a path (``.onnx``, or ``.smelt`` with weights in the
               ``.safetensors`` beside it), ONNX bytes, or an ``onnx.ModelProto``.
    backend:   ``cranelift`` (default: kernels JIT-compiled for this machine),
               ``llvm`` (LLVM JIT for this machine's vector width), ``wgsl``
               (compute shaders through wgpu on Vulkan) or ``interp`` (the
               reference interpreter).
    opt_level: 0–3, as the CLI's ``-O`` (2: e-graph rewrites and fusion).
    threads:   threads for the CPU backends' parallel loops.

    ``Model.run(feeds)`` takes a dict of NumPy arrays by input name (or a list
    in the order of ``Model.inputs``) and returns a dict of NumPy arrays.
    """
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, bytearray):
        model = bytes(model)
    return _compile(model, backend=backend, opt_level=int(opt_level), threads=int(threads))


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
