"""The Python package against ONNX Runtime and the CLI: models made with the
onnx package compiled on every backend this build and host have; example and
zoo-style `.smelt` models; inputs as dicts and lists; models shared by threads;
bad inputs, models and options raise `smelt.Error` subclasses with the CLI's
messages; a PyTorch module through `from_torch` when torch is installed.

Run by test.sh after `pip install ./python` (environment: SMELT_CLI, the smelt
binary, for the comparison with the CLI; SMELT_SKIP_GPU=1 leaves out wgsl).
"""
import os
import subprocess
import threading

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import smelt

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def backends():
    out = ["interp", "cranelift"]
    for b in ["llvm", "wgsl"]:
        if b == "wgsl" and os.environ.get("SMELT_SKIP_GPU") == "1":
            continue
        try:
            smelt.compile(mlp_model(), backend=b)
            out.append(b)
        except smelt.OptionsError:
            pass  # not built into this package
    return out


def mlp_model(n="N", inp=13, hidden=37):
    """x[N, inp] → relu(x·W1 + b1)·W2 + b2, with a symbolic batch."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((inp, hidden)).astype(np.float32)
    b1 = rng.standard_normal(hidden).astype(np.float32)
    w2 = rng.standard_normal((hidden, 5)).astype(np.float32)
    b2 = rng.standard_normal(5).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"]),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["o"]),
        helper.make_node("Add", ["o", "b2"], ["y"]),
    ]
    g = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, inp])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, 5])],
        [numpy_helper.from_array(a, name) for a, name in [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")]],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def ort_run(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


@pytest.mark.parametrize("backend", backends())
def test_matches_onnx_runtime_on_every_backend(backend):
    m = mlp_model()
    x = np.random.default_rng(1).standard_normal((7, 13)).astype(np.float32)
    (want,) = ort_run(m, {"x": x})
    for model in [m, m.SerializeToString()]:
        got = smelt.compile(model, backend=backend).run({"x": x})["y"]
        assert got.dtype == np.float32 and got.shape == (7, 5)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_inputs_outputs_and_symbolic_dims(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), path)
    m = smelt.compile(str(path))
    assert m.inputs == [("x", "float32", ["N", 13])]
    assert m.outputs == [("y", "float32", ["N", 5])]
    assert m.backend == "cranelift"
    assert smelt.compile(path).inputs == m.inputs  # os.PathLike too
    for n in [1, 3, 64]:
        assert m.run({"x": np.zeros((n, 13), np.float32)})["y"].shape == (n, 5)


def test_lists_output_names_and_strided_arrays():
    m = smelt.compile(mlp_model(), backend="cranelift")
    x = np.random.default_rng(2).standard_normal((13, 9)).astype(np.float32).T  # not C order
    a = m.run({"x": x})["y"]
    b = m.run([np.ascontiguousarray(x)], output_names=["y"])["y"]
    np.testing.assert_array_equal(a, b)
    with pytest.raises(smelt.InputError, match="no output named `z`"):
        m.run([x], output_names=["z"])
    with pytest.raises(smelt.InputError, match="takes 1 inputs"):
        m.run([x, x])


def test_the_example_model_matches_the_cli_bit_for_bit(tmp_path):
    cli = os.environ.get("SMELT_CLI")
    if not cli:
        pytest.skip("SMELT_CLI is not set")
    safetensors = pytest.importorskip("safetensors.numpy")
    model = os.path.join(ROOT, "examples", "mlp.smelt")
    m = smelt.compile(model, backend="cranelift")
    (name, dtype, shape) = m.inputs[0]
    shape = [4 if isinstance(d, str) else d for d in shape]
    x = np.random.default_rng(3).standard_normal(shape).astype(dtype)
    safetensors.save_file({name: x}, str(tmp_path / "x.safetensors"))
    subprocess.run([cli, "run", model, "--inputs", str(tmp_path / "x.safetensors"), "-o", str(tmp_path / "o.safetensors")], check=True,
                   capture_output=True, env={**os.environ, "SMELT_TUNING": "off"})
    want = safetensors.load_file(str(tmp_path / "o.safetensors"))
    got = m.run({name: x})
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_schedule_switches_and_tuning_files(tmp_path):
    import warnings

    model = os.path.join(ROOT, "examples", "resblock.smelt")
    x = {"x": np.random.default_rng(5).standard_normal((2, 8, 16, 16)).astype(np.float32)}
    want = smelt.compile(model, backend="cranelift").run(x)

    def close(got):
        for k in want:
            scale = float(np.abs(want[k]).max())
            np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-4 * scale)

    close(smelt.compile(model, backend="cranelift", schedule="winograd=off,kc=64").run(x))
    with pytest.raises(smelt.OptionsError, match="--schedule"):
        smelt.compile(model, schedule="tile=3")
    with pytest.raises(smelt.OptionsError, match="no such file"):
        smelt.compile(model, tuning=tmp_path / "none.json")
    # A file that cannot be used warns and changes nothing.
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    with pytest.warns(UserWarning, match="not a smelt tuning file"):
        m = smelt.compile(model, backend="cranelift", tuning=bad)
    for k, v in m.run(x).items():
        np.testing.assert_array_equal(v, want[k])
    cli = os.environ.get("SMELT_CLI")
    if not cli:
        pytest.skip("SMELT_CLI is not set")
    # The CLI's tuning of this model at this batch, read without a warning.
    tuned = tmp_path / "tuning.json"
    subprocess.run([cli, "tune", model, "--backend", "cranelift", "--dim", "N=2", "--runs", "1", "--tuning", str(tuned)],
                   check=True, capture_output=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = smelt.compile(model, backend="cranelift", tuning=tuned)
    close(m.run(x))


def test_profile_times_each_kernel():
    m = smelt.compile(mlp_model(), backend="cranelift")
    p = m.profile({"x": np.ones((3, 13), np.float32)})
    assert p and all(isinstance(k, str) and isinstance(n, str) and ms >= 0 for k, n, ms in p)
    assert {n for _, n, _ in p} & {"y", "r", "hb", "h"}, p
    with pytest.raises(smelt.OptionsError, match="interpreter"):
        smelt.compile(mlp_model(), backend="interp").profile({"x": np.ones((3, 13), np.float32)})


def test_threads_share_a_model():
    m = smelt.compile(mlp_model(), backend="cranelift", threads=2)
    xs = [np.random.default_rng(i).standard_normal((5, 13)).astype(np.float32) for i in range(8)]
    want = [m.run({"x": x})["y"] for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(20):
            got[i] = m.run({"x": xs[i]})["y"]

    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)


def test_dtypes_in_and_out():
    # Integer and bool inputs and outputs: y = where(c, a + b, a), i64.
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Where", ["c", "s", "a"], ["y"])], "ints",
        [helper.make_tensor_value_info("a", TensorProto.INT64, [4]), helper.make_tensor_value_info("b", TensorProto.INT64, [4]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [4])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    feeds = {"a": np.array([1, 2, 3, 4], np.int64), "b": np.array([10, 20, 30, 40], np.int64), "c": np.array([True, False, True, False])}
    got = smelt.compile(m).run(feeds)["y"]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ort_run(m, feeds)[0])


def test_bad_inputs_raise_input_errors():
    m = smelt.compile(mlp_model())
    x = np.zeros((2, 13), np.float32)
    with pytest.raises(smelt.InputError, match="x") as e:
        m.run({"z": x})
    assert isinstance(e.value, smelt.Error)
    with pytest.raises(smelt.InputError, match="float64"):
        m.run({"x": x.astype(np.float64)})
    with pytest.raises(smelt.InputError):
        m.run({"x": np.zeros((2, 12), np.float32)})
    with pytest.raises(smelt.InputError, match="must be a NumPy array"):
        m.run({"x": [[0.0] * 13]})
    with pytest.raises(smelt.InputError):
        m.run({"x": np.zeros((2, 13), np.int64)})


def test_bad_models_and_options_raise_clear_errors(tmp_path):
    with pytest.raises(smelt.ModelError):
        smelt.compile(b"this is not an onnx model")
    with pytest.raises(smelt.Error, match="nope.onnx"):
        smelt.compile(str(tmp_path / "nope.onnx"))
    bad = tmp_path / "bad.smelt"
    bad.write_text("graph g(x: f32[2]) -> (y) {\n  y = relu(q)\n}\n")
    with pytest.raises(smelt.ModelError, match="bad.smelt:2"):
        smelt.compile(str(bad))
    with pytest.raises(smelt.OptionsError, match="backend"):
        smelt.compile(mlp_model(), backend="tpu")
    with pytest.raises(smelt.OptionsError, match="opt_level"):
        smelt.compile(mlp_model(), opt_level=7)
    with pytest.raises(smelt.ModelError, match="a model is a path"):
        smelt.compile(42)


def test_from_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    x = torch.randn(4, 6)
    m = smelt.from_torch(net, x, dynamic_axes={"input_0": {0: "batch"}})
    got = m.run({"input_0": x.numpy()})
    (y,) = got.values()
    np.testing.assert_allclose(y, net(x).detach().numpy(), rtol=1e-5, atol=1e-5)
    assert m.inputs[0][2] == ["batch", 6]


def test_quantize_dynamic_and_static():
    m = mlp_model()
    x = np.random.default_rng(4).standard_normal((9, 13)).astype(np.float32)
    (want,) = ort_run(m, {"x": x})
    q = smelt.quantize(m, mode="dynamic")
    assert [l["precision"] for l in q.report["layers"]] == ["int8-dynamic", "int8-dynamic"]
    got = q.compile(backend="cranelift").run({"x": x})["y"]
    assert np.linalg.norm(got - want) / np.linalg.norm(want) < 0.05
    calib = [{"x": np.random.default_rng(i).standard_normal((4, 13)).astype(np.float32)} for i in range(6)]
    s = smelt.quantize(m, calibration=calib, budget=0.05)
    assert s.report["error"] <= 0.05 and s.report["calibration_inputs"] == 5
    # The budget keeps the more sensitive layer in f32 and quantizes the other.
    assert sorted(l["precision"] for l in s.report["layers"]) == ["f32", "int8"], s.report["layers"]
    assert any(l["reason"].startswith("kept in f32 for the budget") for l in s.report["layers"])
    assert "qmatmul" in s.text()
    with pytest.raises(smelt.OptionsError, match="mode"):
        smelt.quantize(m, mode="fancy")


def test_prune_save_and_reload(tmp_path):
    p = smelt.prune(mlp_model(inp=256, hidden=512), 0.9, pattern="unstructured")
    r = p.report
    assert abs(r["sparsity"] - 0.9) < 0.01 and r["pattern"] == "unstructured"
    model, weights = p.save(tmp_path / "mlp90")
    assert model.endswith("mlp90.smelt") and os.path.exists(weights)
    x = np.random.default_rng(5).standard_normal((3, 256)).astype(np.float32)
    a = p.compile(backend="cranelift").run({"x": x})["y"]
    b = smelt.compile(model, backend="cranelift").run({"x": x})["y"]
    np.testing.assert_array_equal(a, b)
    # At 90% the optimizer runs the 256×512 layer sparse (a tiny one stays dense).
    assert "sparse_matmul" in smelt.optimize(model).text()
    with pytest.raises(smelt.OptionsError, match="sparsity"):
        smelt.prune(mlp_model(), 1.0)
    with pytest.raises(smelt.OptionsError, match="pattern"):
        smelt.prune(mlp_model(), 0.5, pattern="nm:4:2")


def test_zoo_models_and_zoo(tmp_path):
    models = smelt.zoo_models()
    assert {"resnet18", "dqn", "transformer_encoder", "wavenet_step"} <= set(models)
    assert models["dqn"]["settings"]["size"]["default"] == "84" and models["dqn"]["settings"]["size"]["help"]
    z = smelt.zoo("dqn", seed=3, size=36, dueling=True)
    assert z.report["settings"]["size"] == "36" and z.report["settings"]["dueling"] == "true" and z.report["seed"] == 3
    assert "settings: " in z.text() and "dueling=true" in z.text()
    x = np.random.default_rng(2).standard_normal((3, 4, 36, 36)).astype(np.float32)
    want = z.compile(backend="interp").run({"observation": x})["q"]
    assert want.shape == (3, 18)
    for b in backends()[1:]:
        np.testing.assert_allclose(z.compile(backend=b).run({"observation": x})["q"], want, rtol=1e-4, atol=1e-4)
    # The seed decides the weights; the saved model is the same model.
    other = smelt.zoo("dqn", seed=4, size=36, dueling=True).compile(backend="interp").run({"observation": x})["q"]
    assert not np.allclose(other, want)
    m, w = z.save(tmp_path / "dqn")
    assert os.path.exists(m) and os.path.exists(w)
    np.testing.assert_array_equal(smelt.compile(m, backend="interp").run({"observation": x})["q"], want)
    with pytest.raises(smelt.OptionsError, match="has no key `batch`"):
        smelt.zoo("dqn", batch=2)
    with pytest.raises(smelt.OptionsError, match="unknown model `nope`"):
        smelt.zoo("nope")
    with pytest.raises(smelt.OptionsError, match="draws at most"):
        smelt.zoo("dqn_head", features=1 << 24, hidden=4096)
    with pytest.raises(smelt.OptionsError, match="must divide"):
        smelt.zoo("transformer_encoder", heads=3)


def test_import_onnx_saves_what_onnx_runtime_computes(tmp_path):
    m = mlp_model()
    x = np.random.default_rng(5).standard_normal((4, 13)).astype(np.float32)
    (want,) = ort_run(m, {"x": x})
    path = tmp_path / "mlp.onnx"
    onnx.save(m, path)
    for src in [m, str(path)]:
        t = smelt.import_onnx(src, name="net")
        assert "graph net(" in t.text() and "N" in t.text()
        saved, _ = t.save(tmp_path / "net")
        np.testing.assert_allclose(smelt.compile(saved).run({"x": x})["y"], want, rtol=1e-5, atol=1e-5)
    # dims fix symbolic dims at import (bytes go through a temporary file).
    for src in [m, str(path)]:
        t = smelt.import_onnx(src, dims={"N": 4})
        assert "x: f32[4, 13]" in t.text()
        c = smelt.compile(src, dims={"N": 4})
        assert c.inputs == [("x", "float32", [4, 13])]
        np.testing.assert_allclose(c.run({"x": x})["y"], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(smelt.ModelError, match="import_onnx takes an .onnx file"):
        smelt.import_onnx(os.path.join(ROOT, "examples", "mlp.smelt"))
    with pytest.raises(smelt.OptionsError, match="not a model name"):
        smelt.import_onnx(m, name="a/b")
    with pytest.raises(smelt.OptionsError, match="dims is a dict"):
        smelt.compile(m, dims=[4])


def test_bench_reports_times_and_memory():
    example = os.path.join(ROOT, "examples", "mlp.smelt")
    r = smelt.bench(example, runs=4, warmup=1)
    assert r["runs"] == 4 and len(r["times_ms"]) == 4 and len(r["cpu_ms"]) == 4
    assert r["min_ms"] <= r["median_ms"] and r["min_ms"] > 0 and r["compile_ms"] > 0
    assert r["backend"] == "cranelift" and r["opt_level"] == "O2" and r["nodes_after"] <= r["nodes_before"]
    assert "arena_bytes" in r and r["constant_bytes"] > 0 and r["peak_rss_bytes"] > 0
    assert "profile" not in r
    p = smelt.bench(mlp_model(), backend="llvm" if "llvm" in backends() else "cranelift", runs=3, dims={"N": 8}, profile=True)
    assert len(p["profile"]) >= 1 and all(k["median_ms"] >= 0 for k in p["profile"])
    i = smelt.bench(example, backend="interp", runs=2)
    assert i["compile_ms"] is None and "arena_bytes" not in i
    with pytest.raises(smelt.OptionsError, match="runs must be at least 1"):
        smelt.bench(example, runs=0)
    with pytest.raises(smelt.OptionsError, match="not the interpreter"):
        smelt.bench(example, backend="interp", profile=True)
    with pytest.raises(smelt.OptionsError, match="no symbol `Q`"):
        smelt.bench(example, dims={"Q": 2})


def test_save_library_runs_from_c_as_the_model_does(tmp_path):
    """The AOT library, loaded with ctypes, computes what Model.run does."""
    import ctypes

    m = mlp_model()
    x = np.random.default_rng(6).standard_normal((3, 13)).astype(np.float32)
    for backend in [b for b in backends() if b in ("cranelift", "llvm")]:
        model = smelt.compile(m, backend=backend)
        want = model.run({"x": x})["y"]
        d = tmp_path / backend
        files = model.save_library(d, dims={"N": 3})
        # ONNX bytes or a ModelProto make a graph named `model`.
        assert [os.path.basename(f) for f in files] == ["libmodel.so", "libmodel.a", "model.h", "model.weights"]
        assert "x: f32[3, 13]" in (d / "model.h").read_text()
        lib = ctypes.CDLL(str(d / "libmodel.so"))
        lib.smelt_model_init.restype = ctypes.c_void_p
        lib.smelt_model_init.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.smelt_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.smelt_model_free.argtypes = [ctypes.c_void_p]
        err = ctypes.create_string_buffer(256)
        inst = lib.smelt_model_init(str(d / "model.weights").encode(), err, 256)
        assert inst, err.value
        y = np.zeros((3, 5), np.float32)
        ins = (ctypes.c_void_p * 1)(x.ctypes.data)
        outs = (ctypes.c_void_p * 1)(y.ctypes.data)
        assert lib.smelt_model_run(inst, ins, outs) == 0
        lib.smelt_model_free(inst)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(smelt.OptionsError, match="writes native code"):
        smelt.compile(m, backend="interp").save_library(tmp_path / "no")
    assert not (tmp_path / "no").exists()
    with pytest.raises(smelt.OptionsError, match="no symbol `Q`"):
        smelt.compile(m).save_library(tmp_path / "no", dims={"Q": 1})
    with pytest.raises(smelt.Error, match="nonexistent-cc"):
        smelt.compile(m).save_library(tmp_path / "cc", cc="nonexistent-cc")


def test_bfloat16_arrays_from_ml_dtypes(tmp_path):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    path = tmp_path / "bf.smelt"
    path.write_text("graph bf(x: bf16[5]) -> (y, z) {\n  y = cast(x) {to = f32}\n  z = add(x, x)\n}\n")
    x = np.array([1.5, -2.0, 0.1, 1e38, -0.0], dtype=ml_dtypes.bfloat16)
    for b in ["interp", "cranelift"] + [b for b in backends() if b == "llvm"]:
        out = smelt.compile(str(path), backend=b).run({"x": x})
        assert out["y"].dtype == np.float32 and out["z"].dtype == ml_dtypes.bfloat16
        np.testing.assert_array_equal(out["y"], x.astype(np.float32))
        np.testing.assert_array_equal(out["z"], (x.astype(np.float32) * 2).astype(ml_dtypes.bfloat16))
