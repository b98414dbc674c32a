#!/usr/bin/env python3
"""Generate reference fixtures for smelt's interpreter (interp/src/).

The expected values are computed here, independently of the Rust code, in plain
numpy following docs/ops.md (ONNX semantics where the page says so). Float math is
done in float64 and the result rounded to f32 once; integer math (quantization) is
done exactly, with the f32 steps the spec prescribes done in f32.

For every case NAME this writes, under tests/fixtures/interp/:
  NAME.smelt            the graph (text format, docs/text-format.md)
  NAME.safetensors      every `param`, by name, in its declared dtype
  NAME.io.safetensors   every graph input by name, and every expected output under
                        `expected.<output name>`
and MANIFEST.txt with one line `NAME rtol atol` per case; a value passes when
|actual - expected| <= atol + rtol * |expected| (numpy.allclose); `0 0` is exact.

Rerun:  pip install numpy safetensors && python3 scripts/gen_interp_fixtures.py
The output is deterministic (each case seeds its own generator from its name).
"""

import math
import sys
import zlib
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "interp"

F32 = np.float32
F64 = np.float64

# tolerances (rtol, atol)
EXACT = (0, 0)          # integer/bool outputs, and float ops with no rounding at all
SIMPLE = (1e-5, 1e-5)   # a few f32 roundings
TRANS = (1e-4, 1e-5)    # transcendentals (the Rust side uses f32 libm / an erf approximation)
LONG = (1e-4, 1e-4)     # long accumulations, recurrences, softmax chains

DTYPE_NAMES = {
    np.dtype(np.float32): "f32",
    np.dtype(np.float16): "f16",
    np.dtype(np.int8): "i8",
    np.dtype(np.uint8): "u8",
    np.dtype(np.int32): "i32",
    np.dtype(np.int64): "i64",
    np.dtype(np.bool_): "bool",
}
INT_RANGE = {"i8": (-128, 127), "u8": (0, 255), "i32": (-(2**31), 2**31 - 1)}
NP_OF = {"i8": np.int8, "u8": np.uint8, "i32": np.int32, "i64": np.int64, "f32": np.float32, "bool": np.bool_}


# ----------------------------------------------------------------------------------
# text helpers


def fl(v):
    """A float literal: the repr of the float64 that equals the f32 value exactly, so
    that parsing it (as f32, or as f64 then rounding) gives exactly that f32."""
    v = float(F32(v))
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    r = repr(v)
    assert "+" not in r, r  # keep exponents simple for the lexer
    return r


def ilist(vals):
    return "[" + ", ".join(str(int(v)) for v in vals) + "]"


def flist(vals):
    return "[" + ", ".join(fl(v) for v in vals) + "]"


def tstr(dtype, shape, quant=None):
    dt = dtype if isinstance(dtype, str) else DTYPE_NAMES[np.dtype(dtype)]
    s = f"{dt}[{', '.join(str(int(d)) for d in shape)}]"
    return s + (" " + quant if quant else "")


def qtype(scale, zp, axis=None):
    """A `quant(...)` suffix: per tensor (scalars) or per axis (lists)."""
    if axis is None:
        return f"quant(scale = {fl(scale)}, zero_point = {int(zp)})"
    return f"quant(axis = {axis}, scale = {flist(scale)}, zero_point = {ilist(zp)})"


def rng_for(name, attempt=0):
    return np.random.default_rng(zlib.crc32(name.encode()) + 7919 * attempt)


# ----------------------------------------------------------------------------------
# emitting cases

MANIFEST = []
NAMES = set()
STATS = {}


def _check_body(name, inputs, params, body, outputs):
    """A light sanity check of the graph text: names defined before use, once."""
    defined = set(inputs) | set(params)
    for line in body:
        lhs, rhs = [s.strip() for s in line.split("=", 1)]
        outs = [s.strip() for s in lhs.split(",")]
        rhs = rhs.strip()
        if rhs.startswith("const "):
            pass
        else:
            op = rhs.split("(", 1)[0].strip()
            args = rhs.split("(", 1)[1].split(")", 1)[0]
            for a in [a.strip() for a in args.split(",") if a.strip()]:
                assert a in defined, f"{name}: `{a}` used before definition in `{line}`"
            assert op.replace("_", "").isalnum(), f"{name}: bad op in `{line}`"
        for o in outs:
            assert o not in defined, f"{name}: `{o}` defined twice"
            defined.add(o)
    for o in outputs:
        assert o in defined, f"{name}: output `{o}` undefined"


def emit(name, family, inputs, body, outputs, params=None, tol=SIMPLE, in_types=None, param_types=None, special=False):
    """inputs: {name: array} in signature order; params: {name: array} (a `param` line
    is written for each, first); body: op/const statements; outputs: {name: expected
    array} in output order. in_types/param_types override the printed type (quant).
    Outputs must be finite unless `special` (the NaN/inf cases)."""
    assert name not in NAMES, name
    NAMES.add(name)
    params = params or {}
    in_types = in_types or {}
    param_types = param_types or {}
    _check_body(name, inputs, params, body, outputs)

    sig = ", ".join(f"{n}: {in_types.get(n) or tstr(a.dtype, a.shape)}" for n, a in inputs.items())
    lines = [f"{n} = param {param_types.get(n) or tstr(a.dtype, a.shape)}" for n, a in params.items()]
    lines += body
    text = f"graph {name}({sig}) -> ({', '.join(outputs)}) {{\n"
    text += "".join(f"  {l}\n" for l in lines)
    text += "}\n"

    io = {}
    for n, a in inputs.items():
        a = np.asarray(a).copy(order="C")
        assert a.dtype in DTYPE_NAMES and a.dtype != np.float64, (name, n, a.dtype)
        io[n] = a
    for n, a in outputs.items():
        a = np.asarray(a)
        if a.dtype == np.float64:
            a = a.astype(F32)
        assert a.dtype in DTYPE_NAMES, (name, n, a.dtype)
        if a.dtype == F32 and not special:
            assert np.all(np.isfinite(a)), (name, n)
        io["expected." + n] = np.asarray(a).copy(order="C")
    for n, a in params.items():
        assert a.dtype in DTYPE_NAMES and a.dtype != np.float64, (name, n, a.dtype)

    (OUT / f"{name}.smelt").write_text(text)
    save_file({n: np.asarray(a).copy(order="C") for n, a in params.items()}, str(OUT / f"{name}.safetensors"))
    save_file(io, str(OUT / f"{name}.io.safetensors"))
    MANIFEST.append(f"{name} {tol[0]:g} {tol[1]:g}")
    STATS[family] = STATS.get(family, 0) + 1


# ----------------------------------------------------------------------------------
# random data


def rn(rng, *shape, s=1.0):
    return (rng.standard_normal(shape) * s).astype(F32)


def ru(rng, lo, hi, *shape):
    return rng.uniform(lo, hi, shape).astype(F32)


def rint_vals(rng, lo, hi, *shape, dtype=F32):
    """Integer-valued data (for ties in comparisons/argmax/topk)."""
    return rng.integers(lo, hi + 1, shape).astype(dtype)


def d(a):
    return np.asarray(a, dtype=F64)


# ----------------------------------------------------------------------------------
# reference math (float64 unless stated)


def erf(x):
    return np.vectorize(math.erf, otypes=[F64])(d(x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-d(x)))


def gelu(x):
    x = d(x)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    x = d(x)
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def softmax(x, axis):
    x = d(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis):
    x = d(x)
    m = x - x.max(axis=axis, keepdims=True)
    return m - np.log(np.exp(m).sum(axis=axis, keepdims=True))


ACTS = {"relu": lambda x: np.maximum(d(x), 0.0), "gelu": gelu, "identity": d}


def conv2d_ref(x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1):
    """Direct convolution with loops (ONNX Conv, explicit pads [top, left, bottom,
    right]). Works on float64 or on int64 (for qconv, with x already shifted by its
    zero point so that padding with 0 is padding with the zero point)."""
    acc_t = np.int64 if np.issubdtype(x.dtype, np.integer) else F64
    x = x.astype(acc_t)
    w = w.astype(acc_t)
    N, C, H, W = x.shape
    M, Cg, KH, KW = w.shape
    assert C == Cg * groups and M % groups == 0
    pt, pl, pb, pr = pad
    xp = np.zeros((N, C, H + pt + pb, W + pl + pr), acc_t)
    xp[:, :, pt : pt + H, pl : pl + W] = x
    OH = (H + pt + pb - dil[0] * (KH - 1) - 1) // stride[0] + 1
    OW = (W + pl + pr - dil[1] * (KW - 1) - 1) // stride[1] + 1
    out = np.zeros((N, M, OH, OW), acc_t)
    Mg = M // groups
    for n in range(N):
        for m in range(M):
            g = m // Mg
            for oh in range(OH):
                for ow in range(OW):
                    acc = 0
                    for c in range(Cg):
                        for kh in range(KH):
                            for kw in range(KW):
                                acc += (
                                    xp[n, g * Cg + c, oh * stride[0] + kh * dil[0], ow * stride[1] + kw * dil[1]]
                                    * w[m, c, kh, kw]
                                )
                    out[n, m, oh, ow] = acc + (b[m] if b is not None else 0)
    return out


def conv1d_ref(x, w, b=None, stride=(1,), pad=(0, 0), dil=(1,), groups=1):
    """conv1d as conv2d with H = 1."""
    y = conv2d_ref(
        x[:, :, None, :], w[:, :, None, :], b, (1, stride[0]), (0, pad[0], 0, pad[1]), (1, dil[0]), groups
    )
    return y[:, :, 0, :]


def pool_out_size(L, k, s, pb, pe, dil, ceil_mode):
    num = L + pb + pe - dil * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    # ONNX/PyTorch: with ceil_mode a last window that starts past the end of the input
    # (in the end padding) is dropped. The fixtures avoid that case (asserted), so they
    # do not depend on the rule.
    if ceil_mode:
        assert (out - 1) * s < L + pb, "fixture would depend on the drop-last-window rule"
        CEIL_EFFECTIVE[0] |= out != num // s + 1
    return out


CEIL_EFFECTIVE = [False]  # set when some ceil_mode dimension actually rounds up


def pool2d_ref(x, kind, kernel, stride=None, pad=(0, 0, 0, 0), dil=(1, 1), ceil_mode=False, count_include_pad=False):
    """ONNX MaxPool / AveragePool with explicit pads, by loops over windows.
    avg divisor: count_include_pad=false -> the number of real (non-pad) elements;
    true -> the number of window positions inside the padded input [-pb, L+pe)
    (positions that ceil_mode pushes past the end padding never count; PyTorch/ORT)."""
    x = d(x)
    stride = stride or kernel
    N, C, H, W = x.shape
    pt, pl, pb, pr = pad
    OH = pool_out_size(H, kernel[0], stride[0], pt, pb, dil[0], ceil_mode)
    OW = pool_out_size(W, kernel[1], stride[1], pl, pr, dil[1], ceil_mode)
    out = np.zeros((N, C, OH, OW))
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    vals, in_padded = [], 0
                    for i in range(kernel[0]):
                        h = oh * stride[0] - pt + i * dil[0]
                        for j in range(kernel[1]):
                            w = ow * stride[1] - pl + j * dil[1]
                            if -pt <= h < H + pb and -pl <= w < W + pr:
                                in_padded += 1
                            if 0 <= h < H and 0 <= w < W:
                                vals.append(x[n, c, h, w])
                    assert vals, "window entirely in padding"
                    if kind == "max":
                        out[n, c, oh, ow] = np.max(np.array(vals))  # NaN propagates
                    else:
                        div = in_padded if count_include_pad else len(vals)
                        out[n, c, oh, ow] = sum(vals) / div
    return out


def pool1d_ref(x, kind, kernel, stride=None, pad=(0, 0), dil=(1,), ceil_mode=False, count_include_pad=False):
    stride = stride or kernel
    y = pool2d_ref(
        x[:, :, None, :], kind, (1, kernel[0]), (1, stride[0]), (0, pad[0], 0, pad[1]), (1, dil[0]),
        ceil_mode, count_include_pad,
    )
    return y[:, :, 0, :]


def convnd_ref(x, w, b=None, stride=None, pad=None, dil=None, groups=1):
    """ONNX Conv over any number of spatial dims: the input zero-padded with np.pad,
    then for every kernel tap a strided slice of it contracted with that tap's weights
    (a different route from conv2d_ref's loops)."""
    x, w = d(x), d(w)
    r = x.ndim - 2
    stride, dil, pad = stride or (1,) * r, dil or (1,) * r, pad or (0,) * (2 * r)
    N, C = x.shape[:2]
    M, Cg = w.shape[:2]
    K = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pad[i], pad[r + i]) for i in range(r)])
    osz = [(x.shape[2 + i] + pad[i] + pad[r + i] - dil[i] * (K[i] - 1) - 1) // stride[i] + 1 for i in range(r)]
    y = np.zeros((N, M, *osz))
    Mg = M // groups
    for k in np.ndindex(*K):
        sl = tuple(slice(k[i] * dil[i], k[i] * dil[i] + stride[i] * (osz[i] - 1) + 1, stride[i]) for i in range(r))
        patch = xp[(slice(None), slice(None)) + sl]
        for g in range(groups):
            wk = w[(slice(g * Mg, (g + 1) * Mg), slice(None)) + k]  # [Mg, Cg]
            y[:, g * Mg:(g + 1) * Mg] += np.einsum("nc...,mc->nm...", patch[:, g * Cg:(g + 1) * Cg], wk)
    if b is not None:
        y += d(b).reshape((1, M) + (1,) * r)
    return y


def poolnd_ref(x, kind, kernel, stride=None, pad=None, dil=None, ceil_mode=False, count_include_pad=False):
    """ONNX MaxPool / AveragePool over any number of spatial dims, by loops over each
    window (as pool2d_ref). Also returns MaxPool's Indices in both storage orders: the
    flat index of the first maximum, (n·C + c)·S + offset with the offset row-major
    (storage_order 0) or column-major over the spatial dims (storage_order 1)."""
    x = d(x)
    r = x.ndim - 2
    stride, dil, pad = stride or kernel, dil or (1,) * r, pad or (0,) * (2 * r)
    N, C = x.shape[:2]
    sp = x.shape[2:]
    S = int(np.prod(sp))
    osz = [pool_out_size(sp[i], kernel[i], stride[i], pad[i], pad[r + i], dil[i], ceil_mode) for i in range(r)]
    y = np.zeros((N, C, *osz))
    row = np.zeros((N, C, *osz), np.int64)
    col = np.zeros((N, C, *osz), np.int64)
    for n in range(N):
        for c in range(C):
            for o in np.ndindex(*osz):
                best, arg, tot, real, in_padded = None, None, 0.0, 0, 0
                for k in np.ndindex(*kernel):
                    q = [o[i] * stride[i] - pad[i] + k[i] * dil[i] for i in range(r)]
                    if all(-pad[i] <= q[i] < sp[i] + pad[r + i] for i in range(r)):
                        in_padded += 1
                    if all(0 <= q[i] < sp[i] for i in range(r)):
                        v = x[(n, c) + tuple(q)]
                        if best is None or v > best:
                            best, arg = v, q
                        tot += v
                        real += 1
                assert real, "window entirely in padding"
                plane = (n * C + c) * S
                y[(n, c) + o] = best if kind == "max" else tot / (in_padded if count_include_pad else real)
                row[(n, c) + o] = plane + int(np.ravel_multi_index(arg, sp, order="C"))
                col[(n, c) + o] = plane + int(np.ravel_multi_index(arg, sp, order="F"))
    return y, row, col


def layer_norm_ref(x, scale, bias, axis, eps):
    x = d(x)
    axis = axis % x.ndim
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + float(F32(eps))) * d(scale)
    return y + d(bias) if bias is not None else y


def lstm_ref(x, w, r, b, h0, c0, H, direction, p=None):
    """ONNX LSTM, layout 0, gates i, o, f, c; peepholes p [D, 3H] (i, o, f) when
    given; y: [T, D, N, H]."""
    x, w, r, b = d(x), d(w), d(r), d(b)
    T, N, _ = x.shape
    D = 2 if direction == "bidirectional" else 1
    y = np.zeros((T, D, N, H))
    hN = np.zeros((D, N, H))
    cN = np.zeros((D, N, H))
    for di in range(D):
        reverse = direction == "reverse" or di == 1
        W, R, Wb, Rb = w[di], r[di], b[di, : 4 * H], b[di, 4 * H :]
        h = d(h0[di]) if h0 is not None else np.zeros((N, H))
        c = d(c0[di]) if c0 is not None else np.zeros((N, H))
        P = d(p[di]) if p is not None else np.zeros(3 * H)
        pi, po, pf = P[:H], P[H : 2 * H], P[2 * H :]
        for t in range(T - 1, -1, -1) if reverse else range(T):
            g = x[t] @ W.T + h @ R.T + Wb + Rb  # [N, 4H]
            i = sigmoid(g[:, 0:H] + pi * c)
            f = sigmoid(g[:, 2 * H : 3 * H] + pf * c)
            ct = np.tanh(g[:, 3 * H : 4 * H])
            c = f * c + i * ct
            o = sigmoid(g[:, H : 2 * H] + po * c)
            h = o * np.tanh(c)
            y[t, di] = h
        hN[di], cN[di] = h, c
    return y, hN, cN


def gru_ref(x, w, r, b, h0, H, direction, lbr):
    """ONNX GRU, layout 0, gates z, r, h; y: [T, D, N, H]."""
    x, w, r, b = d(x), d(w), d(r), d(b)
    T, N, _ = x.shape
    D = 2 if direction == "bidirectional" else 1
    y = np.zeros((T, D, N, H))
    hN = np.zeros((D, N, H))
    for di in range(D):
        reverse = direction == "reverse" or di == 1
        W, R, Wb, Rb = w[di], r[di], b[di, : 3 * H], b[di, 3 * H :]
        Wz, Wr, Wh = W[0:H], W[H : 2 * H], W[2 * H : 3 * H]
        Rz, Rr, Rh = R[0:H], R[H : 2 * H], R[2 * H : 3 * H]
        Wbz, Wbr, Wbh = Wb[0:H], Wb[H : 2 * H], Wb[2 * H : 3 * H]
        Rbz, Rbr, Rbh = Rb[0:H], Rb[H : 2 * H], Rb[2 * H : 3 * H]
        h = d(h0[di]) if h0 is not None else np.zeros((N, H))
        for t in range(T - 1, -1, -1) if reverse else range(T):
            xt = x[t]
            z = sigmoid(xt @ Wz.T + h @ Rz.T + Wbz + Rbz)
            rr = sigmoid(xt @ Wr.T + h @ Rr.T + Wbr + Rbr)
            if lbr:
                hh = np.tanh(xt @ Wh.T + rr * (h @ Rh.T + Rbh) + Wbh)
            else:
                hh = np.tanh(xt @ Wh.T + (rr * h) @ Rh.T + Rbh + Wbh)
            h = (1.0 - z) * hh + z * h
            y[t, di] = h
        hN[di] = h
    return y, hN


def attention_ref(q, k, v, mask=None, heads=1, scale=None, causal=False):
    q, k, v = d(q), d(k), d(v)
    B, Tq, E = q.shape
    Tk, Ev = k.shape[1], v.shape[2]
    dh, dv = E // heads, Ev // heads
    if scale is None:
        scale = 1.0 / math.sqrt(E / heads)
    else:
        scale = float(F32(scale))
    m4 = np.broadcast_to(d(mask), (B, heads, Tq, Tk)) if mask is not None else np.zeros((B, heads, Tq, Tk))
    out = np.zeros((B, Tq, Ev))
    for bi in range(B):
        for h in range(heads):
            qh = q[bi, :, h * dh : (h + 1) * dh]
            kh = k[bi, :, h * dh : (h + 1) * dh]
            vh = v[bi, :, h * dv : (h + 1) * dv]
            s = qh @ kh.T * scale + m4[bi, h]
            if causal:
                for i in range(Tq):
                    for j in range(Tk):
                        if j > i + (Tk - Tq):
                            s[i, j] = -np.inf
            out[bi, :, h * dv : (h + 1) * dv] = softmax(s, -1) @ vh
    return out


def quantize_ref(x, scale, zp, dtype, axis=None, check_robust=True):
    """The interpreter computes quantize as clamp(round_half_even(x / scale) + zp) with
    x / scale an f32 division (round_half_even of an f32 is exact). With
    check_robust the result must not depend on doing the division in f64 instead
    (so only the deliberate .5-boundary values depend on the f32 rule)."""
    x = np.asarray(x, F32)
    if axis is None:
        s, z = F32(scale), np.int64(zp)
    else:
        shp = [1] * x.ndim
        shp[axis] = -1
        s = np.asarray(scale, F32).reshape(shp)
        z = np.asarray(zp, np.int64).reshape(shp)
    q32 = np.rint(x / s)  # f32 / f32 -> f32, then round half to even
    if check_robust:
        q64 = np.rint(d(x) / d(s))
        assert np.array_equal(q32.astype(F64), q64), "quantize depends on f32 vs f64 division"
    lo, hi = INT_RANGE[dtype]
    return np.clip(q32.astype(np.int64) + z, lo, hi).astype(NP_OF[dtype])


def dequantize_ref(q, scale, zp, axis=None):
    """(q - zp) * scale in f32: (q - zp) is exact, so one rounding of the product."""
    q = np.asarray(q, np.int64)
    if axis is None:
        s, z = F32(scale), np.int64(zp)
    else:
        shp = [1] * q.ndim
        shp[axis] = -1
        s = np.asarray(scale, F32).reshape(shp)
        z = np.asarray(zp, np.int64).reshape(shp)
    return ((q - z).astype(F32) * s).astype(F32)


class Ambiguous(Exception):
    pass


def requantize_ref(acc, sa, sb, so, zo, dtype):
    """clamp(round_half_even(acc * sa * sb / so) + zo). The result is computed in
    float64 and must agree with the plausible f32 orderings (((acc*sa)*sb)/so in f32,
    and acc * (sa*sb/so) with the multiplier in f32), else Ambiguous is raised and the
    case is regenerated with other data; so the fixture does not depend on the order."""
    acc = np.asarray(acc, np.int64)
    assert np.all(np.abs(acc) < 2**24)
    sb = np.asarray(sb, F32)
    r64 = d(acc) * d(F32(sa)) * d(sb) / d(F32(so))
    r32a = ((acc.astype(F32) * F32(sa)) * sb) / F32(so)
    r32b = acc.astype(F32) * ((F32(sa) * sb) / F32(so))
    q = np.rint(r64)
    if not (np.array_equal(q, np.rint(d(r32a))) and np.array_equal(q, np.rint(d(r32b)))):
        raise Ambiguous()
    lo, hi = INT_RANGE[dtype]
    return np.clip(q.astype(np.int64) + zo, lo, hi).astype(NP_OF[dtype])


def qmatmul_acc(a, za, b, zb):
    """Sum_k (a - za)(b - zb) exactly (int64); zb per column ([N]) or scalar."""
    a = np.asarray(a, np.int64) - np.int64(za)
    b = np.asarray(b, np.int64) - np.asarray(zb, np.int64)
    return a @ b


def topk_ref(x, k, axis, largest):
    """Sorted top-k; ties keep the lower index first (stable sort)."""
    x = d(x)
    xm = np.moveaxis(x, axis, -1)
    key = -xm if largest else xm
    idx = np.argsort(key, axis=-1, kind="stable")[..., :k]
    vals = np.take_along_axis(xm, idx, axis=-1)
    return np.moveaxis(vals, -1, axis).astype(F32), np.moveaxis(idx, -1, axis).astype(np.int64)


def moe_slots(idx, experts, capacity):
    """Slot of (t, j) in its expert, in token order; -1 where dropped."""
    T, K = idx.shape
    count = [0] * experts
    slot = np.full((T, K), -1, np.int64)
    for t in range(T):
        for j in range(K):
            e = int(idx[t, j])
            if capacity is None or count[e] < capacity:
                slot[t, j] = count[e]
                count[e] += 1
    return slot


def moe_ref(x, gate, w1, w2, k, activation, capacity_factor):
    x, gate, w1, w2 = d(x), d(gate), d(w1), d(w2)
    T, _ = x.shape
    E = gate.shape[1]
    logits = x @ gate
    idx = np.zeros((T, k), np.int64)
    wts = np.zeros((T, k))
    for t in range(T):
        order = np.argsort(-logits[t], kind="stable")
        srt = logits[t, order]
        # the fixture must not depend on near-ties in the routing
        if k < E:
            assert srt[k - 1] - srt[k] > 1e-3, "near tie in routing"
        idx[t] = order[:k]
        wts[t] = softmax(logits[t, order[:k]], -1)
    cap = None if capacity_factor == 0 else math.ceil(T * k * capacity_factor / E)
    if cap is not None:
        frac = T * k * capacity_factor / E
        assert abs(frac - round(frac)) > 1e-3, "capacity on an integer boundary"
    slot = moe_slots(idx, E, cap)
    out = np.zeros_like(x)
    for t in range(T):
        for j in range(k):
            if slot[t, j] < 0:
                continue
            e = idx[t, j]
            hdn = ACTS[activation](x[t] @ w1[e])
            out[t] += wts[t, j] * (hdn @ w2[e])
    return out, slot


def onnx_slice_indices(dim, start, end, step):
    """ONNX Slice clamping, one axis, returned as a list of indices."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
        return list(range(start, end, step))
    start = min(max(start, 0), dim - 1)
    end = min(max(end, -1), dim - 1)
    return list(range(start, end, step))


def slice_ref(x, starts, ends, axes=None, steps=None):
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    out = x
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % x.ndim
        out = np.take(out, onnx_slice_indices(x.shape[a], s, e, st), axis=a)
    return out


def pad_ref(x, pads, mode, value=0.0):
    r = x.ndim
    pw = [(pads[i], pads[i + r]) for i in range(r)]
    if mode == "constant":
        return np.pad(d(x), pw, mode="constant", constant_values=float(F32(value)))
    # numpy 'reflect' (no edge repetition) == ONNX reflect; numpy 'edge' == ONNX edge
    return np.pad(d(x), pw, mode=mode)


def int_div_trunc(a, b):
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (b < 0), -q, q)


# ----------------------------------------------------------------------------------
# cases: elementwise


def cases_unary():
    shape = (3, 7, 5)
    halves = np.array([-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -0.0, 0.0, 4.5, -4.5], F32)

    def normal(rng):
        return rn(rng, *shape, s=1.5)

    def pos(rng):
        return ru(rng, 0.05, 4.0, *shape)

    def nonzero(rng):
        return (rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 3.0, shape)).astype(F32)

    def halves_mix(rng):
        x = rn(rng, *shape, s=3.0).reshape(-1)
        x[: len(halves)] = halves
        x[len(halves) : len(halves) + 6] = np.array([1.0, -2.0, 2.4999998, -2.5000002, 0.49999997, 7.0], F32)
        rng.shuffle(x)
        return x.reshape(shape)

    def with_zeros(rng):
        x = rn(rng, *shape, s=2.0).reshape(-1)
        x[::4] = 0.0
        x[1] = -0.0
        return x.reshape(shape)

    unary = [
        ("relu", lambda x: np.maximum(d(x), 0), normal, EXACT),
        ("gelu", gelu, normal, TRANS),
        ("gelu_tanh", gelu_tanh, normal, TRANS),
        ("tanh", lambda x: np.tanh(d(x)), normal, TRANS),
        ("sigmoid", sigmoid, normal, TRANS),
        ("exp", lambda x: np.exp(d(x)), normal, TRANS),
        ("log", lambda x: np.log(d(x)), pos, TRANS),
        ("sqrt", lambda x: np.sqrt(d(x)), pos, SIMPLE),
        ("rsqrt", lambda x: 1.0 / np.sqrt(d(x)), pos, SIMPLE),
        ("neg", lambda x: -d(x), normal, EXACT),
        ("abs", lambda x: np.abs(d(x)), normal, EXACT),
        ("erf", erf, normal, TRANS),
        ("sin", lambda x: np.sin(d(x)), lambda r: rn(r, *shape, s=3.0), TRANS),
        ("cos", lambda x: np.cos(d(x)), lambda r: rn(r, *shape, s=3.0), TRANS),
        ("reciprocal", lambda x: 1.0 / d(x), nonzero, SIMPLE),
        ("floor", lambda x: np.floor(d(x)), halves_mix, EXACT),
        ("ceil", lambda x: np.ceil(d(x)), halves_mix, EXACT),
        ("round", lambda x: np.rint(d(x)), halves_mix, EXACT),
        ("sign", lambda x: np.sign(d(x)), with_zeros, EXACT),
        ("softplus", lambda x: np.logaddexp(0.0, d(x)), lambda r: rn(r, *shape, s=4.0), TRANS),
        ("silu", lambda x: d(x) * sigmoid(x), normal, TRANS),
        ("identity", d, normal, EXACT),
    ]
    for op, fn, gen, tol in unary:
        name = f"unary_{op}"
        x = gen(rng_for(name))
        emit(name, "unary", {"x": x}, [f"y = {op}(x)"], {"y": fn(x)}, tol=tol)

    # unary ops with attributes, default and non-default
    def leaky(alpha):
        return lambda x: np.where(d(x) < 0, float(F32(alpha)) * d(x), d(x))

    def elu(alpha):
        return lambda x: np.where(d(x) < 0, float(F32(alpha)) * (np.exp(d(x)) - 1.0), d(x))

    def hsig(alpha, beta):
        return lambda x: np.maximum(0.0, np.minimum(1.0, float(F32(alpha)) * d(x) + float(F32(beta))))

    def clip(lo, hi):
        return lambda x: np.minimum(np.maximum(d(x), float(F32(lo))), float(F32(hi)))

    attr_cases = [
        ("leaky_relu_default", "leaky_relu(x)", leaky(0.01), SIMPLE),
        ("leaky_relu_alpha", f"leaky_relu(x) {{alpha = {fl(0.2)}}}", leaky(0.2), SIMPLE),
        ("elu_default", "elu(x)", elu(1.0), TRANS),
        ("elu_alpha", f"elu(x) {{alpha = {fl(0.7)}}}", elu(0.7), TRANS),
        ("hard_sigmoid_default", "hard_sigmoid(x)", hsig(0.2, 0.5), SIMPLE),
        ("hard_sigmoid_params", f"hard_sigmoid(x) {{alpha = {fl(0.3)}, beta = {fl(0.4)}}}", hsig(0.3, 0.4), SIMPLE),
        ("clip_both", f"clip(x) {{min = {fl(-0.5)}, max = {fl(0.75)}}}", clip(-0.5, 0.75), EXACT),
        ("clip_min_only", f"clip(x) {{min = {fl(0.0)}}}", clip(0.0, np.inf), EXACT),
        ("clip_max_only", f"clip(x) {{max = {fl(1.5)}}}", clip(-np.inf, 1.5), EXACT),
    ]
    for nm, call, fn, tol in attr_cases:
        name = f"unary_{nm}"
        x = rn(rng_for(name), 3, 7, 5, s=3.0)
        emit(name, "unary_attr", {"x": x}, [f"y = {call}"], {"y": fn(x)}, tol=tol)

    # integer forms of neg/abs/sign/relu/identity
    for op, fn in [
        ("neg", lambda a: -a),
        ("abs", np.abs),
        ("sign", np.sign),
        ("relu", lambda a: np.maximum(a, 0)),
        ("identity", lambda a: a),
    ]:
        name = f"unary_{op}_i32"
        x = rint_vals(rng_for(name), -1000, 1000, 5, 7, dtype=np.int32)
        x[0, :3] = [0, 2147483647, -2147483647]
        emit(name, "unary_int", {"x": x}, [f"y = {op}(x)"], {"y": fn(x.astype(np.int64)).astype(np.int32)}, tol=EXACT)
    name = "unary_relu_i64"
    x = rint_vals(rng_for(name), -50, 50, 13, dtype=np.int64)
    emit(name, "unary_int", {"x": x}, ["y = relu(x)"], {"y": np.maximum(x, 0)}, tol=EXACT)
    name = "unary_neg_i8"
    x = rint_vals(rng_for(name), -127, 127, 3, 5, dtype=np.int8)
    emit(name, "unary_int", {"x": x}, ["y = neg(x)"], {"y": (-x.astype(np.int64)).astype(np.int8)}, tol=EXACT)

    name = "unary_not"
    x = rng_for(name).random((3, 7)) < 0.5
    emit(name, "unary_int", {"x": x}, ["y = not(x)"], {"y": ~x}, tol=EXACT)


def cases_cast():
    name = "cast_f32_i32"
    x = rn(rng_for(name), 4, 7, s=5.0).reshape(-1)
    x[:12] = [-0.7, 0.7, 2.9, -2.9, 3e9, -3e9, 2147483520.0, -2147483648.0, 1e10, -1e10, 0.0, -0.0]
    x = x.reshape(4, 7).astype(F32)
    y = np.clip(np.trunc(d(x)), -(2**31), 2**31 - 1).astype(np.int32)
    emit(name, "cast", {"x": x}, ["y = cast(x) {to = i32}"], {"y": y}, tol=EXACT)

    name = "cast_f32_i8"
    x = rn(rng_for(name), 3, 7, s=80.0)
    x[0, :5] = [200.0, -200.0, 127.9, -128.9, -0.5]
    emit(name, "cast", {"x": x}, ["y = cast(x) {to = i8}"], {"y": np.clip(np.trunc(d(x)), -128, 127).astype(np.int8)}, tol=EXACT)

    name = "cast_f32_u8"
    x = rn(rng_for(name), 3, 7, s=150.0)
    x[0, :5] = [300.0, -3.5, 255.9, -0.9, 0.9]
    emit(name, "cast", {"x": x}, ["y = cast(x) {to = u8}"], {"y": np.clip(np.trunc(d(x)), 0, 255).astype(np.uint8)}, tol=EXACT)

    name = "cast_f32_i64"
    x = rn(rng_for(name), 13, s=1000.0)
    emit(name, "cast", {"x": x}, ["y = cast(x) {to = i64}"], {"y": np.trunc(d(x)).astype(np.int64)}, tol=EXACT)

    name = "cast_i32_f32"
    x = rint_vals(rng_for(name), -100000, 100000, 3, 7, dtype=np.int32)
    x[0, :4] = [16777217, -16777219, 2147483647, -2147483648]  # round to nearest (even)
    emit(name, "cast", {"x": x}, ["y = cast(x) {to = f32}"], {"y": x.astype(F32)}, tol=EXACT)

    name = "cast_f32_bool"
    x = rn(rng_for(name), 3, 7)
    x[0, :4] = [0.0, -0.0, 1e-30, -1e-30]
    x[2, ::2] = 0.0
    emit(name, "cast", {"x": x}, ["y = cast(x) {to = bool}"], {"y": x != 0}, tol=EXACT)

    name = "cast_bool_f32"
    x = rng_for(name).random((3, 7)) < 0.5
    emit(name, "cast", {"x": x}, ["y = cast(x) {to = f32}"], {"y": x.astype(F32)}, tol=EXACT)


def cases_binary():
    A, B = (3, 1, 5), (4, 1)

    def std(rng):
        return rn(rng, *A), rn(rng, *B)

    float_ops = [
        ("add", lambda a, b: d(a) + d(b), std, SIMPLE),
        ("sub", lambda a, b: d(a) - d(b), std, SIMPLE),
        ("mul", lambda a, b: d(a) * d(b), std, SIMPLE),
        (
            "div",
            lambda a, b: d(a) / d(b),
            lambda r: (rn(r, *A), (r.choice([-1.0, 1.0], B) * r.uniform(0.3, 2.0, B)).astype(F32)),
            SIMPLE,
        ),
        ("max", lambda a, b: np.maximum(d(a), d(b)), lambda r: (rint_vals(r, -3, 3, *A), rint_vals(r, -3, 3, *B)), EXACT),
        ("min", lambda a, b: np.minimum(d(a), d(b)), lambda r: (rint_vals(r, -3, 3, *A), rint_vals(r, -3, 3, *B)), EXACT),
        ("pow", lambda a, b: d(a) ** d(b), lambda r: (ru(r, 0.2, 3.0, *A), rn(r, *B)), TRANS),
        ("prelu", None, None, None),
    ]
    for op, fn, gen, tol in float_ops:
        name = f"binary_{op}_bcast"
        rng = rng_for(name)
        if op == "prelu":
            x, slope = rn(rng, 2, 5, 7), rn(rng, 5, 1, s=0.5)
            y = np.where(d(x) < 0, d(slope) * d(x), d(x))
            emit(name, "binary", {"x": x, "slope": slope}, ["y = prelu(x, slope)"], {"y": y}, tol=SIMPLE)
            continue
        a, b = gen(rng)
        emit(name, "binary", {"a": a, "b": b}, [f"y = {op}(a, b)"], {"y": fn(a, b)}, tol=tol)

    # other broadcast patterns
    rng = rng_for("binary_add_same")
    a, b = rn(rng, 7, 13), rn(rng, 7, 13)
    emit("binary_add_same", "binary", {"a": a, "b": b}, ["y = add(a, b)"], {"y": d(a) + d(b)})
    rng = rng_for("binary_mul_scalar1")
    a, b = rn(rng, 3, 5, 7), rn(rng, 1)
    emit("binary_mul_scalar1", "binary", {"a": a, "b": b}, ["y = mul(a, b)"], {"y": d(a) * d(b)})
    rng = rng_for("binary_sub_rank")
    a, b = rn(rng, 5), rn(rng, 2, 3, 5)
    emit("binary_sub_rank", "binary", {"a": a, "b": b}, ["y = sub(a, b)"], {"y": d(a) - d(b)})
    rng = rng_for("binary_div_both")
    a, b = rn(rng, 5, 1), ru(rng, 0.5, 2.0, 1, 7)
    emit("binary_div_both", "binary", {"a": a, "b": b}, ["y = div(a, b)"], {"y": d(a) / d(b)})
    rng = rng_for("binary_prelu_same")
    x, slope = rn(rng, 3, 7), rn(rng, 3, 7)
    emit("binary_prelu_same", "binary", {"x": x, "slope": slope}, ["y = prelu(x, slope)"],
         {"y": np.where(d(x) < 0, d(slope) * d(x), d(x))})

    # integer binary
    int_ops = [
        ("add", lambda a, b: a + b),
        ("sub", lambda a, b: a - b),
        ("mul", lambda a, b: a * b),
        ("div", int_div_trunc),
        ("max", np.maximum),
        ("min", np.minimum),
    ]
    for op, fn in int_ops:
        name = f"binary_{op}_i32"
        rng = rng_for(name)
        a = rint_vals(rng, -50, 50, *A, dtype=np.int32)
        b = rint_vals(rng, -9, 9, *B, dtype=np.int32)
        if op == "div":
            b[b == 0] = 3
            b[0, 0], b[1, 0] = -2, 2
            a[0, 0, :3] = [-7, 7, -1]
        y = fn(a.astype(np.int64), b.astype(np.int64)).astype(np.int32)
        emit(name, "binary_int", {"a": a, "b": b}, [f"y = {op}(a, b)"], {"y": y}, tol=EXACT)
    name = "binary_add_i64"
    rng = rng_for(name)
    a, b = rint_vals(rng, -10**12, 10**12, 3, 5, dtype=np.int64), rint_vals(rng, -10**12, 10**12, 5, dtype=np.int64)
    emit(name, "binary_int", {"a": a, "b": b}, ["y = add(a, b)"], {"y": a + b}, tol=EXACT)

    # comparisons (integer-valued floats so that ties occur)
    cmp_ops = [
        ("equal", np.equal),
        ("less", np.less),
        ("less_equal", np.less_equal),
        ("greater", np.greater),
        ("greater_equal", np.greater_equal),
    ]
    for op, fn in cmp_ops:
        name = f"cmp_{op}"
        rng = rng_for(name)
        a, b = rint_vals(rng, -2, 2, *A), rint_vals(rng, -2, 2, *B)
        a[0, 0, 0] = 0.5
        emit(name, "compare", {"a": a, "b": b}, [f"y = {op}(a, b)"], {"y": fn(d(a), d(b))}, tol=EXACT)
    for op, fn in [("less", np.less), ("equal", np.equal)]:
        name = f"cmp_{op}_i32"
        rng = rng_for(name)
        a, b = rint_vals(rng, -2, 2, *A, dtype=np.int32), rint_vals(rng, -2, 2, *B, dtype=np.int32)
        emit(name, "compare", {"a": a, "b": b}, [f"y = {op}(a, b)"], {"y": fn(a, b)}, tol=EXACT)

    for op, fn in [("and", np.logical_and), ("or", np.logical_or), ("xor", np.logical_xor)]:
        name = f"logic_{op}"
        rng = rng_for(name)
        a, b = rng.random(A) < 0.5, rng.random(B) < 0.5
        emit(name, "logical", {"a": a, "b": b}, [f"y = {op}(a, b)"], {"y": fn(a, b)}, tol=EXACT)

    name = "where_bcast"
    rng = rng_for(name)
    c, a, b = rng.random((3, 1, 5)) < 0.5, rn(rng, 4, 1), rn(rng, 5)
    emit(name, "where", {"c": c, "a": a, "b": b}, ["y = where(c, a, b)"], {"y": np.where(c, d(a), d(b))}, tol=EXACT)
    name = "where_i32"
    rng = rng_for(name)
    c, a, b = rng.random((3, 7)) < 0.5, rint_vals(rng, -9, 9, 3, 7, dtype=np.int32), rint_vals(rng, -9, 9, 7, dtype=np.int32)
    emit(name, "where", {"c": c, "a": a, "b": b}, ["y = where(c, a, b)"], {"y": np.where(c, a, b)}, tol=EXACT)
    name = "where_from_compare"
    rng = rng_for(name)
    x = rn(rng, 5, 7)
    emit(name, "where", {"x": x}, ["z = const f32[1] [0.0]", "c = greater(x, z)", "n = neg(x)", "y = where(c, x, n)"],
         {"y": np.abs(d(x))}, tol=EXACT)

    name = "const_add"
    x = rn(rng_for(name), 2, 3)
    cv = np.array([1.5, -2.0, 0.25], F32)
    emit(name, "const", {"x": x}, [f"c = const f32[3] {flist(cv)}", "y = add(x, c)"], {"y": d(x) + d(cv)})
    name = "const_bool_where"
    rng = rng_for(name)
    x, z = rn(rng, 3, 5), rn(rng, 3, 5)
    m = np.array([True, False, False, True, True])
    emit(name, "const", {"x": x, "z": z}, ["m = const bool[5] [true, false, false, true, true]", "y = where(m, x, z)"],
         {"y": np.where(m, d(x), d(z))}, tol=EXACT)


# ----------------------------------------------------------------------------------
# linear algebra


def cases_linalg():
    mm = [
        ("matmul_2d", (5, 7), (7, 3)),
        ("matmul_batched_bcast", (2, 1, 3, 7), (5, 7, 4)),
        ("matmul_batched_same", (3, 5, 13), (3, 13, 2)),
        ("matmul_vec_mat", (7,), (7, 5)),
        ("matmul_mat_vec", (3, 7), (7,)),
        ("matmul_batch_vec", (2, 3, 7), (7,)),
        ("matmul_vec_batch", (7,), (2, 7, 5)),
        ("matmul_vec_vec", (13,), (13,)),
    ]
    for name, sa, sb in mm:
        rng = rng_for(name)
        a, b = rn(rng, *sa), rn(rng, *sb)
        emit(name, "matmul", {"a": a, "b": b}, ["y = matmul(a, b)"], {"y": np.matmul(d(a), d(b))})
    name = "matmul_i32"
    rng = rng_for(name)
    a, b = rint_vals(rng, -20, 20, 2, 3, 7, dtype=np.int32), rint_vals(rng, -20, 20, 7, 5, dtype=np.int32)
    emit(name, "matmul", {"a": a, "b": b}, ["y = matmul(a, b)"], {"y": (a.astype(np.int64) @ b).astype(np.int32)}, tol=EXACT)
    name = "matmul_param"
    rng = rng_for(name)
    a, w = rn(rng, 3, 11), rn(rng, 11, 6)
    emit(name, "matmul", {"a": a}, ["y = matmul(a, w)"], {"y": d(a) @ d(w)}, params={"w": w})

    def gemm(a, b, c, ta, tb, alpha, beta):
        A = d(a).T if ta else d(a)
        B = d(b).T if tb else d(b)
        y = float(F32(alpha)) * (A @ B)
        if c is not None:
            y = y + float(F32(beta)) * d(c)
        return y

    rng = rng_for("gemm_basic")
    a, b, c = rn(rng, 5, 7), rn(rng, 7, 3), rn(rng, 3)
    emit("gemm_basic", "gemm", {"a": a}, ["y = gemm(a, b, c)"], {"y": gemm(a, b, c, 0, 0, 1, 1)}, params={"b": b, "c": c})
    rng = rng_for("gemm_trans_alpha_beta")
    a, b, c = rn(rng, 7, 5), rn(rng, 3, 7), rn(rng, 5, 1)
    emit("gemm_trans_alpha_beta", "gemm", {"a": a, "b": b, "c": c},
         [f"y = gemm(a, b, c) {{trans_a = true, trans_b = true, alpha = {fl(0.5)}, beta = {fl(2.0)}}}"],
         {"y": gemm(a, b, c, 1, 1, 0.5, 2.0)})
    rng = rng_for("gemm_no_c_trans_b")
    a, b = rn(rng, 5, 7), rn(rng, 3, 7)
    emit("gemm_no_c_trans_b", "gemm", {"a": a, "b": b}, ["y = gemm(a, b) {trans_b = true}"], {"y": gemm(a, b, None, 0, 1, 1, 1)})
    rng = rng_for("gemm_full_c_trans_a")
    a, b, c = rn(rng, 7, 5), rn(rng, 7, 3), rn(rng, 5, 3)
    emit("gemm_full_c_trans_a", "gemm", {"a": a, "b": b, "c": c},
         [f"y = gemm(a, b, c) {{trans_a = true, alpha = {fl(1.25)}, beta = {fl(-1.5)}}}"],
         {"y": gemm(a, b, c, 1, 0, 1.25, -1.5)})
    rng = rng_for("gemm_scalar_c")
    a, b, c = rn(rng, 3, 13), rn(rng, 13, 5), rn(rng, 1)
    emit("gemm_scalar_c", "gemm", {"a": a, "b": b, "c": c}, [f"y = gemm(a, b, c) {{beta = {fl(0.25)}}}"],
         {"y": gemm(a, b, c, 0, 0, 1, 0.25)})


# ----------------------------------------------------------------------------------
# convolution and pooling


def cases_conv():
    def c2(name, xs, ws, bias, attrs, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1, family="conv2d"):
        rng = rng_for(name)
        x, w = rn(rng, *xs), rn(rng, *ws, s=0.5)
        params = {"w": w}
        b = None
        if bias:
            b = rn(rng, ws[0])
            params["b"] = b
        args = "x, w, b" if bias else "x, w"
        a = f" {{{attrs}}}" if attrs else ""
        emit(name, family, {"x": x}, [f"y = conv2d({args}){a}"],
             {"y": conv2d_ref(d(x), d(w), d(b) if b is not None else None, stride, pad, dil, groups)},
             params=params, tol=SIMPLE)

    c2("conv2d_stride2", (1, 3, 7, 5), (4, 3, 3, 3), True, "stride = [2, 2], pad = [1, 1, 1, 1]", (2, 2), (1, 1, 1, 1))
    c2("conv2d_basic", (2, 3, 9, 7), (5, 3, 3, 3), True, "")
    c2("conv2d_asym_pad", (2, 3, 9, 7), (5, 3, 3, 2), True, "pad = [2, 0, 1, 1]", pad=(2, 0, 1, 1))
    c2("conv2d_dilation", (1, 2, 11, 13), (3, 2, 3, 3), True, "pad = [1, 2, 1, 2], dilation = [2, 3]",
       pad=(1, 2, 1, 2), dil=(2, 3))
    c2("conv2d_groups2", (1, 4, 7, 7), (6, 2, 3, 3), True, "pad = [1, 1, 1, 1], groups = 2", pad=(1, 1, 1, 1), groups=2)
    c2("conv2d_depthwise", (2, 5, 9, 9), (5, 1, 3, 3), False, "stride = [2, 1], pad = [1, 1, 1, 1], groups = 5",
       stride=(2, 1), pad=(1, 1, 1, 1), groups=5)
    c2("conv2d_nobias_1x1", (1, 7, 5, 5), (3, 7, 1, 1), False, "")
    c2("conv2d_stride_dil_asym", (1, 3, 13, 11), (2, 3, 2, 3), False,
       "stride = [3, 2], pad = [0, 2, 1, 0], dilation = [2, 1]", stride=(3, 2), pad=(0, 2, 1, 0), dil=(2, 1))

    def c1(name, xs, ws, bias, attrs, stride=(1,), pad=(0, 0), dil=(1,), groups=1):
        rng = rng_for(name)
        x, w = rn(rng, *xs), rn(rng, *ws, s=0.5)
        params = {"w": w}
        b = None
        if bias:
            b = rn(rng, ws[0])
            params["b"] = b
        args = "x, w, b" if bias else "x, w"
        a = f" {{{attrs}}}" if attrs else ""
        emit(name, "conv1d", {"x": x}, [f"y = conv1d({args}){a}"],
             {"y": conv1d_ref(d(x), d(w), d(b) if b is not None else None, stride, pad, dil, groups)}, params=params)

    c1("conv1d_basic", (2, 3, 13), (4, 3, 3), True, "")
    c1("conv1d_causal_dil2", (1, 3, 11), (5, 3, 3), True, "pad = [4, 0], dilation = [2]", pad=(4, 0), dil=(2,))
    c1("conv1d_stride_pad", (2, 4, 17), (3, 4, 5), False, "stride = [3], pad = [2, 1]", stride=(3,), pad=(2, 1))
    c1("conv1d_groups", (1, 6, 9), (4, 3, 3), True, "pad = [1, 1], groups = 2", pad=(1, 1), groups=2)

    def c3(name, xs, ws, bias, attrs, **kw):
        rng = rng_for(name)
        x, w = rn(rng, *xs), rn(rng, *ws, s=0.5)
        params = {"w": w}
        b = None
        if bias:
            b = rn(rng, ws[0])
            params["b"] = b
        args = "x, w, b" if bias else "x, w"
        a = f" {{{attrs}}}" if attrs else ""
        emit(name, "conv3d", {"x": x}, [f"y = conv3d({args}){a}"], {"y": convnd_ref(x, w, b, **kw)}, params=params)

    c3("conv3d_basic", (2, 3, 5, 6, 7), (4, 3, 3, 2, 3), True, "")
    c3("conv3d_stride_pad", (1, 3, 7, 5, 9), (5, 3, 3, 3, 2), False,
       "stride = [2, 1, 3], pad = [1, 0, 2, 1, 1, 0]", stride=(2, 1, 3), pad=(1, 0, 2, 1, 1, 0))
    c3("conv3d_groups_dilation", (1, 4, 7, 5, 6), (6, 2, 2, 3, 2), True,
       "pad = [1, 0, 1, 0, 2, 1], dilation = [2, 1, 2], groups = 2",
       pad=(1, 0, 1, 0, 2, 1), dil=(2, 1, 2), groups=2)


def cases_pool():
    def p2(name, op, xs, attrs, **kw):
        x = rn(rng_for(name), *xs)
        kind = "max" if op.startswith("max") else "avg"
        CEIL_EFFECTIVE[0] = False
        y = pool2d_ref(x, kind, **kw)
        assert CEIL_EFFECTIVE[0] == kw.get("ceil_mode", False), f"{name}: ceil_mode has no effect"
        emit(name, "pool", {"x": x}, [f"y = {op}(x) {{{attrs}}}"], {"y": y}, tol=EXACT if kind == "max" else SIMPLE)

    p2("max_pool2d_basic", "max_pool2d", (1, 3, 7, 9), "kernel = [2, 2]", kernel=(2, 2))
    p2("max_pool2d_pad_stride", "max_pool2d", (2, 3, 9, 7), "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1]",
       kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1))
    p2("max_pool2d_ceil", "max_pool2d", (1, 2, 8, 10), "kernel = [3, 3], stride = [2, 2], ceil_mode = true",
       kernel=(3, 3), stride=(2, 2), ceil_mode=True)
    p2("max_pool2d_dilation", "max_pool2d", (1, 2, 9, 10), "kernel = [2, 3], stride = [1, 2], dilation = [2, 1]",
       kernel=(2, 3), stride=(1, 2), dil=(2, 1))
    p2("max_pool2d_asym_pad", "max_pool2d", (1, 3, 7, 7), "kernel = [3, 2], stride = [2, 1], pad = [0, 1, 2, 0]",
       kernel=(3, 2), stride=(2, 1), pad=(0, 1, 2, 0))
    p2("avg_pool2d_basic", "avg_pool2d", (1, 3, 9, 11), "kernel = [3, 3], stride = [2, 2]", kernel=(3, 3), stride=(2, 2))
    p2("avg_pool2d_pad_exclude", "avg_pool2d", (2, 3, 7, 9), "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1]",
       kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1))
    p2("avg_pool2d_pad_include", "avg_pool2d", (2, 3, 7, 9),
       "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1], count_include_pad = true",
       kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1), count_include_pad=True)
    p2("avg_pool2d_ceil_exclude", "avg_pool2d", (1, 2, 9, 11),
       "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 0, 0], ceil_mode = true",
       kernel=(3, 3), stride=(2, 2), pad=(1, 1, 0, 0), ceil_mode=True)
    # ceil_mode + count_include_pad: the divisor of the last window counts only the
    # positions inside the padded input (PyTorch / onnxruntime); see pool2d_ref.
    p2("avg_pool2d_ceil_include", "avg_pool2d", (1, 2, 9, 11),
       "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 0, 0], ceil_mode = true, count_include_pad = true",
       kernel=(3, 3), stride=(2, 2), pad=(1, 1, 0, 0), ceil_mode=True, count_include_pad=True)

    def p1(name, op, xs, attrs, **kw):
        x = rn(rng_for(name), *xs)
        kind = "max" if op.startswith("max") else "avg"
        CEIL_EFFECTIVE[0] = False
        y = pool1d_ref(x, kind, **kw)
        assert CEIL_EFFECTIVE[0] == kw.get("ceil_mode", False), f"{name}: ceil_mode has no effect"
        emit(name, "pool", {"x": x}, [f"y = {op}(x) {{{attrs}}}"], {"y": y}, tol=EXACT if kind == "max" else SIMPLE)

    p1("max_pool1d_pad_stride", "max_pool1d", (2, 3, 13), "kernel = [3], stride = [2], pad = [1, 1]",
       kernel=(3,), stride=(2,), pad=(1, 1))
    p1("max_pool1d_ceil_dil", "max_pool1d", (1, 3, 13), "kernel = [2], stride = [3], dilation = [2], ceil_mode = true",
       kernel=(2,), stride=(3,), dil=(2,), ceil_mode=True)
    p1("avg_pool1d_exclude", "avg_pool1d", (2, 3, 13), "kernel = [4], stride = [3], pad = [1, 2]",
       kernel=(4,), stride=(3,), pad=(1, 2))
    p1("avg_pool1d_include", "avg_pool1d", (2, 3, 13), "kernel = [4], stride = [3], pad = [1, 2], count_include_pad = true",
       kernel=(4,), stride=(3,), pad=(1, 2), count_include_pad=True)
    p1("avg_pool1d_default_stride", "avg_pool1d", (1, 2, 11), "kernel = [3]", kernel=(3,))

    def pn(name, op, xs, attrs, **kw):
        x = rn(rng_for(name), *xs)
        kind = "max" if op.startswith("max") else "avg"
        CEIL_EFFECTIVE[0] = False
        y, _, _ = poolnd_ref(x, kind, **kw)
        assert CEIL_EFFECTIVE[0] == kw.get("ceil_mode", False), f"{name}: ceil_mode has no effect"
        emit(name, "pool3d", {"x": x}, [f"y = {op}(x) {{{attrs}}}"], {"y": y}, tol=EXACT if kind == "max" else SIMPLE)

    pn("max_pool3d_basic", "max_pool3d", (2, 3, 4, 6, 5), "kernel = [2, 2, 2]", kernel=(2, 2, 2))
    pn("max_pool3d_pad_stride_dil", "max_pool3d", (1, 2, 7, 6, 9),
       "kernel = [3, 2, 2], stride = [2, 1, 3], pad = [1, 0, 1, 1, 1, 0], dilation = [1, 2, 1]",
       kernel=(3, 2, 2), stride=(2, 1, 3), pad=(1, 0, 1, 1, 1, 0), dil=(1, 2, 1))
    pn("avg_pool3d_pad_include", "avg_pool3d", (1, 3, 5, 7, 6),
       "kernel = [3, 3, 2], stride = [2, 2, 2], pad = [1, 1, 0, 1, 1, 1], count_include_pad = true",
       kernel=(3, 3, 2), stride=(2, 2, 2), pad=(1, 1, 0, 1, 1, 1), count_include_pad=True)
    pn("avg_pool3d_ceil_exclude", "avg_pool3d", (1, 2, 6, 7, 5),
       "kernel = [2, 3, 2], stride = [2, 2, 2], pad = [1, 0, 0, 0, 1, 0], ceil_mode = true",
       kernel=(2, 3, 2), stride=(2, 2, 2), pad=(1, 0, 0, 0, 1, 0), ceil_mode=True)

    def pi(name, op, xs, attrs, order, **kw):
        x = rn(rng_for(name), *xs)
        y, row, col = poolnd_ref(x, "max", **kw)
        emit(name, "pool_indices", {"x": x}, [f"y, i = {op}(x) {{{attrs}, indices = {order}}}"],
             {"y": y, "i": row if order == "row_major" else col}, tol=EXACT)

    pi("max_pool2d_indices_row", "max_pool2d", (2, 3, 7, 6), "kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1]",
       "row_major", kernel=(3, 3), stride=(2, 2), pad=(1, 1, 1, 1))
    pi("max_pool2d_indices_col", "max_pool2d", (2, 3, 7, 6), "kernel = [3, 2], stride = [2, 1], pad = [1, 0, 1, 1]",
       "col_major", kernel=(3, 2), stride=(2, 1), pad=(1, 0, 1, 1))
    pi("max_pool1d_indices_col", "max_pool1d", (2, 3, 11), "kernel = [3], stride = [2], dilation = [2]",
       "col_major", kernel=(3,), stride=(2,), dil=(2,))
    pi("max_pool3d_indices_col", "max_pool3d", (1, 2, 5, 4, 6), "kernel = [2, 2, 3], stride = [1, 2, 2], pad = [0, 1, 1, 1, 0, 1]",
       "col_major", kernel=(2, 2, 3), stride=(1, 2, 2), pad=(0, 1, 1, 1, 0, 1))
    pi("max_pool3d_indices_row", "max_pool3d", (2, 1, 4, 5, 3), "kernel = [2, 3, 2], stride = [2, 1, 1]",
       "row_major", kernel=(2, 3, 2), stride=(2, 1, 1))

    for name, op, xs in [
        ("global_avg_pool_2d", "global_avg_pool", (2, 3, 7, 5)),
        ("global_max_pool_2d", "global_max_pool", (2, 3, 7, 5)),
        ("global_avg_pool_1d", "global_avg_pool", (2, 5, 11)),
        ("global_max_pool_1d", "global_max_pool", (2, 5, 11)),
    ]:
        x = rn(rng_for(name), *xs)
        axes = tuple(range(2, x.ndim))
        y = d(x).mean(axis=axes, keepdims=True) if "avg" in op else d(x).max(axis=axes, keepdims=True)
        emit(name, "pool", {"x": x}, [f"y = {op}(x)"], {"y": y}, tol=SIMPLE if "avg" in op else EXACT)


# ----------------------------------------------------------------------------------
# normalization, softmax, reductions


def cases_norm():
    def bn(name, xs, eps=None):
        rng = rng_for(name)
        C = xs[1]
        x = rn(rng, *xs)
        scale, bias, mean, var = rn(rng, C), rn(rng, C), rn(rng, C, s=0.5), ru(rng, 0.2, 2.0, C)
        e = 1e-5 if eps is None else eps
        shp = [1] * len(xs)
        shp[1] = C
        r = lambda a: d(a).reshape(shp)
        y = (d(x) - r(mean)) / np.sqrt(r(var) + float(F32(e))) * r(scale) + r(bias)
        a = "" if eps is None else f" {{epsilon = {fl(eps)}}}"
        emit(name, "norm", {"x": x}, [f"y = batch_norm(x, scale, bias, mean, var){a}"], {"y": y},
             params={"scale": scale, "bias": bias, "mean": mean, "var": var})

    bn("batch_norm_4d", (2, 5, 3, 7))
    bn("batch_norm_3d_eps", (3, 7, 5), eps=1e-3)

    def ln(name, xs, axis, bias, eps=None):
        rng = rng_for(name)
        x = rn(rng, *xs, s=2.0) + 0.5
        nshape = xs[axis % len(xs):]
        scale = rn(rng, *nshape)
        params = {"scale": scale}
        b = None
        if bias:
            b = rn(rng, *nshape)
            params["bias"] = b
        attrs = []
        if axis != -1:
            attrs.append(f"axis = {axis}")
        if eps is not None:
            attrs.append(f"epsilon = {fl(eps)}")
        a = f" {{{', '.join(attrs)}}}" if attrs else ""
        args = "x, scale, bias" if bias else "x, scale"
        emit(name, "norm", {"x": x}, [f"y = layer_norm({args}){a}"],
             {"y": layer_norm_ref(x, scale, b, axis, 1e-5 if eps is None else eps)}, params=params)

    ln("layer_norm_last", (3, 5, 7), -1, True)
    ln("layer_norm_last_nobias", (3, 5, 7), -1, False)
    ln("layer_norm_axis1", (3, 5, 7), 1, True)
    ln("layer_norm_axis1_nobias_eps", (3, 5, 7), 1, False, eps=1e-3)
    ln("layer_norm_2d", (5, 13), -1, True)

    for op, fn in [("softmax", softmax), ("log_softmax", log_softmax)]:
        for axis in (-1, 1):
            name = f"{op}_axis{'_last' if axis == -1 else '1'}"
            x = rn(rng_for(name), 3, 5, 7, s=3.0)
            a = "" if axis == -1 else f" {{axis = {axis}}}"
            emit(name, "softmax", {"x": x}, [f"y = {op}(x){a}"], {"y": fn(x, axis)}, tol=TRANS)
        name = f"{op}_2d_axis0"
        x = rn(rng_for(name), 13, 3, s=3.0)
        emit(name, "softmax", {"x": x}, [f"y = {op}(x) {{axis = 0}}"], {"y": fn(x, 0)}, tol=TRANS)

    # lrn, as ONNX LRN: the window of channels c - floor((size-1)/2) ..
    # c + ceil((size-1)/2), clipped; odd and even sizes, a window wider than C,
    # non-default alpha/beta/bias, 3-d and 4-d inputs.
    def lrn_ref(x, size, alpha, beta, bias):
        x = d(x)
        C = x.shape[1]
        sq = np.zeros_like(x)
        for c in range(C):
            lo, hi = max(0, c - (size - 1) // 2), min(C - 1, c + size // 2)
            sq[:, c] = (x[:, lo : hi + 1] ** 2).sum(axis=1)
        return x / (float(F32(bias)) + float(F32(alpha)) / size * sq) ** float(F32(beta))

    for name, xs, size, alpha, beta, bias in [
        ("lrn_default_3", (2, 5, 4, 3), 3, 1e-4, 0.75, 1.0),
        ("lrn_even_4", (1, 7, 3, 5), 4, 0.002, 0.6, 2.0),
        ("lrn_wide_3d", (3, 4, 9), 7, 0.05, 0.75, 0.5),
    ]:
        x = rn(rng_for(name), *xs, s=2.0)
        attrs = [f"size = {size}"]
        for k, v, default in [("alpha", alpha, 1e-4), ("beta", beta, 0.75), ("bias", bias, 1.0)]:
            if v != default:
                attrs.append(f"{k} = {fl(v)}")
        emit(name, "lrn", {"x": x}, [f"y = lrn(x) {{{', '.join(attrs)}}}"], {"y": lrn_ref(x, size, alpha, beta, bias)}, tol=TRANS)


def cases_reduce():
    fns = {
        "reduce_sum": lambda x, ax, kd: d(x).sum(axis=ax, keepdims=kd),
        "reduce_mean": lambda x, ax, kd: d(x).mean(axis=ax, keepdims=kd),
        "reduce_max": lambda x, ax, kd: d(x).max(axis=ax, keepdims=kd),
        "reduce_min": lambda x, ax, kd: d(x).min(axis=ax, keepdims=kd),
        "reduce_prod": lambda x, ax, kd: d(x).prod(axis=ax, keepdims=kd),
        "reduce_l2": lambda x, ax, kd: np.sqrt((d(x) ** 2).sum(axis=ax, keepdims=kd)),
    }
    variants = [
        ("axis1", [1], True),
        ("axes02_nokeep", [0, 2], False),
        ("all", [], True),
    ]
    for op, fn in fns.items():
        for vname, axes, kd in variants:
            name = f"{op}_{vname}"
            rng = rng_for(name)
            x = ru(rng, 0.6, 1.4, 3, 5, 7) * rng.choice([-1, 1], (3, 5, 7)).astype(F32) if op == "reduce_prod" else rn(rng, 3, 5, 7)
            attrs = []
            if axes:
                attrs.append(f"axes = {ilist(axes)}")
            if not kd:
                attrs.append("keepdims = false")
            a = f" {{{', '.join(attrs)}}}" if attrs else ""
            ax = tuple(axes) if axes else None
            tol = EXACT if op in ("reduce_max", "reduce_min") else SIMPLE
            emit(name, "reduce", {"x": x}, [f"y = {op}(x){a}"], {"y": fn(x, ax, kd)}, tol=tol)
    name = "reduce_sum_all_nokeep"
    x = rn(rng_for(name), 3, 5, 7)
    emit(name, "reduce", {"x": x}, ["y = reduce_sum(x) {keepdims = false}"], {"y": d(x).sum()})
    name = "reduce_mean_neg_axis"
    x = rn(rng_for(name), 3, 5, 7)
    emit(name, "reduce", {"x": x}, ["y = reduce_mean(x) {axes = [-1], keepdims = false}"], {"y": d(x).mean(axis=-1)})
    name = "reduce_max_2d_axis0"
    x = rn(rng_for(name), 13, 4)
    emit(name, "reduce", {"x": x}, ["y = reduce_max(x) {axes = [0]}"], {"y": d(x).max(axis=0, keepdims=True)}, tol=EXACT)

    # argmax / argmin, with ties (first index wins)
    for op, fn in [("argmax", np.argmax), ("argmin", np.argmin)]:
        name = f"{op}_axis0_ties"
        x = rint_vals(rng_for(name), -2, 2, 5, 7)
        emit(name, "argminmax", {"x": x}, [f"y = {op}(x)"], {"y": fn(x, axis=0, keepdims=True).astype(np.int64)}, tol=EXACT)
        name = f"{op}_axis1_nokeep"
        x = rint_vals(rng_for(name), -3, 3, 3, 5, 7)
        emit(name, "argminmax", {"x": x}, [f"y = {op}(x) {{axis = 1, keepdims = false}}"],
             {"y": fn(x, axis=1).astype(np.int64)}, tol=EXACT)
        name = f"{op}_last_random"
        x = rn(rng_for(name), 3, 13)
        emit(name, "argminmax", {"x": x}, [f"y = {op}(x) {{axis = -1}}"],
             {"y": fn(x, axis=-1, keepdims=True).astype(np.int64)}, tol=EXACT)


# ----------------------------------------------------------------------------------
# shape ops


def cases_shape():
    def one(name, family, x, line, y, tol=EXACT, extra_inputs=None):
        inputs = {"x": x}
        inputs.update(extra_inputs or {})
        emit(name, family, inputs, [line], {"y": y}, tol=tol)

    x = rn(rng_for("reshape_zero_neg"), 2, 3, 35)
    one("reshape_zero_neg", "reshape", x, "y = reshape(x) {shape = [0, -1, 5]}", x.reshape(2, 21, 5))
    x = rn(rng_for("reshape_flat"), 3, 5, 7)
    one("reshape_flat", "reshape", x, "y = reshape(x) {shape = [-1]}", x.reshape(-1))
    x = rn(rng_for("reshape_plain"), 3, 5, 7)
    one("reshape_plain", "reshape", x, "y = reshape(x) {shape = [7, 15]}", x.reshape(7, 15))
    x = rn(rng_for("reshape_zero_last"), 3, 5, 7)
    # `0` copies the input dim at the same position (ONNX): dim 1 = 5.
    one("reshape_zero_last", "reshape", x, "y = reshape(x) {shape = [-1, 0]}", x.reshape(21, 5))

    x = rn(rng_for("transpose_default"), 2, 3, 5)
    one("transpose_default", "transpose", x, "y = transpose(x)", x.transpose())
    x = rn(rng_for("transpose_perm"), 2, 3, 5, 7)
    one("transpose_perm", "transpose", x, "y = transpose(x) {perm = [0, 2, 3, 1]}", x.transpose(0, 2, 3, 1))
    x = rn(rng_for("transpose_2d"), 13, 7)
    one("transpose_2d", "transpose", x, "y = transpose(x) {perm = [1, 0]}", x.T)

    rng = rng_for("concat3_axis1")
    a, b, c = rn(rng, 2, 1, 5), rn(rng, 2, 3, 5), rn(rng, 2, 4, 5)
    emit("concat3_axis1", "concat", {"a": a, "b": b, "c": c}, ["y = concat(a, b, c) {axis = 1}"],
         {"y": np.concatenate([a, b, c], axis=1)}, tol=EXACT)
    rng = rng_for("concat3_axis_neg")
    a, b, c = rn(rng, 3, 2), rn(rng, 3, 7), rn(rng, 3, 1)
    emit("concat3_axis_neg", "concat", {"a": a, "b": b, "c": c}, ["y = concat(a, b, c) {axis = -1}"],
         {"y": np.concatenate([a, b, c], axis=-1)}, tol=EXACT)
    rng = rng_for("concat2_axis0")
    a, b = rn(rng, 2, 3, 5), rn(rng, 5, 3, 5)
    emit("concat2_axis0", "concat", {"a": a, "b": b}, ["y = concat(a, b) {axis = 0}"],
         {"y": np.concatenate([a, b], axis=0)}, tol=EXACT)

    x = rn(rng_for("split3_axis1"), 3, 7, 5)
    emit("split3_axis1", "split", {"x": x}, ["a, b, c = split(x) {axis = 1, sizes = [1, 2, 4]}"],
         {"a": x[:, 0:1], "b": x[:, 1:3], "c": x[:, 3:7]}, tol=EXACT)
    x = rn(rng_for("split2_axis0"), 5, 3)
    emit("split2_axis0", "split", {"x": x}, ["a, b = split(x) {sizes = [2, 3]}"], {"a": x[0:2], "b": x[2:5]}, tol=EXACT)
    x = rn(rng_for("split_last_neg"), 2, 13)
    emit("split_last_neg", "split", {"x": x}, ["a, b = split(x) {axis = -1, sizes = [6, 7]}"],
         {"a": x[:, :6], "b": x[:, 6:]}, tol=EXACT)

    sl = [
        ("slice_neg_starts", (7, 13), [-5, 2], [1000, -3], [0, 1], None),
        ("slice_neg_step", (7, 13), [-1], [-1000], [1], [-2]),
        ("slice_reverse_all", (7, 5), [-1, 100], [-1000, -1000], [0, 1], [-1, -1]),
        ("slice_step3_clamped", (3, 13, 5), [1, -100], [1000, 4], [1, -1], [3, 1]),
        ("slice_default_axes", (5, 7), [1, 0], [4, 7], None, None),
        ("slice_neg_step_mid", (17,), [10], [2], [0], [-3]),
    ]
    for name, xs, starts, ends, axes, steps in sl:
        x = rn(rng_for(name), *xs)
        attrs = [f"starts = {ilist(starts)}", f"ends = {ilist(ends)}"]
        if axes is not None:
            attrs.append(f"axes = {ilist(axes)}")
        if steps is not None:
            attrs.append(f"steps = {ilist(steps)}")
        y = slice_ref(x, starts, ends, axes, steps)
        assert y.size > 0
        one(name, "slice", x, f"y = slice(x) {{{', '.join(attrs)}}}", y)

    rng = rng_for("gather_axis0_i64")
    x = rn(rng, 7, 5)
    idx = np.array([[0, -1, 3], [6, -7, 2]], np.int64)
    emit("gather_axis0_i64", "gather", {"x": x, "idx": idx}, ["y = gather(x, idx)"], {"y": np.take(x, idx, axis=0)}, tol=EXACT)
    rng = rng_for("gather_axis1_i32")
    x = rn(rng, 3, 7, 5)
    idx = np.array([4, -2, 0, 4], np.int32)
    emit("gather_axis1_i32", "gather", {"x": x, "idx": idx}, ["y = gather(x, idx) {axis = 1}"],
         {"y": np.take(x, idx, axis=1)}, tol=EXACT)
    rng = rng_for("gather_const_idx")
    x = rn(rng, 3, 13)
    emit("gather_const_idx", "gather", {"x": x}, ["idx = const i64[2, 2] [12, 0, -13, 5]", "y = gather(x, idx) {axis = -1}"],
         {"y": np.take(x, np.array([[12, 0], [-13, 5]]), axis=-1)}, tol=EXACT)
    rng = rng_for("gather_scalar_idx")
    x = rn(rng, 5, 7)
    idx = np.array(-2, np.int64)
    emit("gather_scalar_idx", "gather", {"x": x, "idx": idx}, ["y = gather(x, idx)"], {"y": x[-2]}, tol=EXACT)
    rng = rng_for("gather_i32_data")
    x = rint_vals(rng, -100, 100, 5, 3, dtype=np.int32)
    idx = np.array([1, 1, -1], np.int64)
    emit("gather_i32_data", "gather", {"x": x, "idx": idx}, ["y = gather(x, idx)"], {"y": x[[1, 1, -1]]}, tol=EXACT)

    x = rn(rng_for("pad_constant_value"), 2, 5, 7)
    one("pad_constant_value", "pad", x, f"y = pad(x) {{pads = [0, 1, 2, 1, 0, 3], value = {fl(1.5)}}}",
        pad_ref(x, [0, 1, 2, 1, 0, 3], "constant", 1.5))
    x = rn(rng_for("pad_constant_zero"), 3, 5)
    one("pad_constant_zero", "pad", x, "y = pad(x) {pads = [1, 0, 2, 3]}", pad_ref(x, [1, 0, 2, 3], "constant"))
    x = rn(rng_for("pad_reflect"), 3, 5, 7)
    one("pad_reflect", "pad", x, "y = pad(x) {pads = [0, 2, 3, 0, 4, 1], mode = reflect}",
        pad_ref(x, [0, 2, 3, 0, 4, 1], "reflect"))
    x = rn(rng_for("pad_edge"), 5, 7)
    one("pad_edge", "pad", x, "y = pad(x) {pads = [2, 3, 4, 1], mode = edge}", pad_ref(x, [2, 3, 4, 1], "edge"))
    x = rn(rng_for("pad_reflect_1d"), 2, 3, 6)
    one("pad_reflect_1d", "pad", x, "y = pad(x) {pads = [0, 0, 5, 0, 0, 2], mode = reflect}",
        pad_ref(x, [0, 0, 5, 0, 0, 2], "reflect"))

    x = rn(rng_for("pad_wrap"), 3, 5, 7)
    one("pad_wrap", "pad", x, "y = pad(x) {pads = [0, 2, 3, 1, 4, 1], mode = wrap}",
        pad_ref(x, [0, 2, 3, 1, 4, 1], "wrap"))
    x = rn(rng_for("pad_wrap_past_length"), 2, 3)
    one("pad_wrap_past_length", "pad", x, "y = pad(x) {pads = [3, 7, 2, 5], mode = wrap}",
        pad_ref(x, [3, 7, 2, 5], "wrap"))

    x = rn(rng_for("expand_basic"), 3, 1)
    one("expand_basic", "expand", x, "y = expand(x) {shape = [2, 3, 5]}", np.broadcast_to(x, (2, 3, 5)))
    x = rn(rng_for("expand_bcast_both"), 1, 3, 1)
    one("expand_bcast_both", "expand", x, "y = expand(x) {shape = [2, 1, 5]}", np.broadcast_to(x, (2, 3, 5)))
    x = rn(rng_for("expand_shorter_shape"), 2, 1, 7)
    one("expand_shorter_shape", "expand", x, "y = expand(x) {shape = [5, 1]}", np.broadcast_to(x, (2, 5, 7)))

    # nonzero: numpy's nonzero stacked (row-major indices; NaN counts), with zeros
    # among integer values, a bool input of rank 3 and an input with none.
    x = rint_vals(rng_for("nonzero_f32"), -2, 2, 4, 7)
    x[1, 3] = np.nan
    emit("nonzero_f32", "nonzero", {"x": x}, ["y = nonzero(x) {count = K}"], {"y": np.array(np.nonzero(x), np.int64)}, tol=EXACT, special=True)
    b = rng_for("nonzero_bool_3d").random((3, 2, 5)) > 0.6
    emit("nonzero_bool_3d", "nonzero", {"x": b}, ["y = nonzero(x) {count = K}"], {"y": np.array(np.nonzero(b), np.int64)}, tol=EXACT)
    z = np.zeros((2, 3), np.int64)
    emit("nonzero_none", "nonzero", {"x": z}, ["y = nonzero(x) {count = K}"], {"y": np.zeros((2, 0), np.int64)}, tol=EXACT)


# ----------------------------------------------------------------------------------
# recurrent


def cases_resize():
    # resize, written from docs/ops.md: per axis, per output index, the input
    # coordinate, the k nearest integer positions (ties to the smaller), edge-clamped,
    # weighted by the mode's kernel; separable over the changed axes in order.
    def cubic_w(t, a):
        t = abs(t)
        if t <= 1:
            return ((a + 2) * t - (a + 3)) * t * t + 1
        if t < 2:
            return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
        return 0.0

    def weights(mode, near, r, s, a, antialias):
        if mode == "nearest":
            right = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5, "floor": False,
                     "ceil": True, "simple": s < 1}[near]
            return [0.0, 1.0] if (r == 1.0 or right) else [1.0, 0.0]
        if not antialias:
            if mode == "linear":
                return [1 - r, r]
            return [cubic_w(r + 1, a), cubic_w(r, a), cubic_w(1 - r, a), cubic_w(2 - r, a)]
        s = min(s, 1.0)
        support = 1 if mode == "linear" else 2
        lo = math.floor(-support / s) + 1
        ks = range(lo, 2 - lo)
        kern = (lambda t: max(0.0, 1 - abs(t))) if mode == "linear" else (lambda t: cubic_w(t, a))
        w = [kern(s * (k - r)) for k in ks]
        return [x / sum(w) for x in w]

    def resize_ref(x, sizes, scales, mode="nearest", coord="half_pixel", near="round_prefer_floor", a=-0.75,
                   excl=False, antialias=False, roi=None, extra=0.0):
        x = d(x)
        rank = x.ndim
        outs = [x.shape[i] if sizes[i] == -1 else sizes[i] for i in range(rank)]
        for ax in range(rank):
            L, n = x.shape[ax], outs[ax]
            s = float(F32(scales[ax])) if scales else n / L
            lo_, hi_ = (float(F32(roi[ax])), float(F32(roi[rank + ax]))) if roi else (0.0, 1.0)
            whole = roi is None or (lo_ == 0 and hi_ == 1)
            if abs(s - 1) <= 1e-9 and L == n and (whole or coord != "tf_crop_and_resize"):
                continue
            nf = s * L
            y = np.zeros(x.shape[:ax] + (n,) + x.shape[ax + 1:])
            for o in range(n):
                if coord == "align_corners":
                    c = 0.0 if n == 1 else o * (L - 1) / (n - 1)
                elif coord == "asymmetric":
                    c = o / s
                elif coord == "tf_crop_and_resize":
                    c = 0.5 * (lo_ + hi_) * (L - 1) if n == 1 else lo_ * (L - 1) + o * (hi_ - lo_) * (L - 1) / (n - 1)
                elif coord == "pytorch_half_pixel":
                    c = 0.0 if n == 1 else (o + 0.5) / s - 0.5
                elif coord == "half_pixel":
                    c = (o + 0.5) / s - 0.5
                else:  # half_pixel_symmetric
                    c = L / 2 * (1 - n / nf) + (o + 0.5) / s - 0.5
                sel = [slice(None)] * x.ndim
                sel[ax] = o
                if coord == "tf_crop_and_resize" and (c < 0 or c > L - 1):
                    y[tuple(sel)] = extra
                    continue
                r = 1.0 if c == math.floor(c) else c - math.floor(c)
                w = weights(mode, near, r, s, a, antialias)
                k = len(w)
                cand = range(math.floor(c) - k - 1, math.ceil(c) + k + 2)
                pos = sorted(sorted(cand, key=lambda i: (abs(c - i), i))[:k])
                if excl:
                    w = [0.0 if (p < 0 or p >= L) else wi for wi, p in zip(w, pos)]
                    t = sum(w) or 1.0
                    w = [wi / t for wi in w]
                if mode == "nearest":
                    # one tap: the neighbour chosen (its weight 0 if excluded)
                    j = 1 if weights(mode, near, r, s, a, False)[1] == 1.0 else 0
                    pairs = [(w[j], pos[j])]
                else:
                    pairs = list(zip(w, pos))
                acc = 0.0
                for wi, p in pairs:
                    acc = acc + wi * np.take(x, min(max(p, 0), L - 1), axis=ax)
                y[tuple(sel)] = acc
            x = y
        return x

    cases = [
        ("resize_nearest_up2", (1, 2, 3, 4), [-1, -1, 6, 8], [1, 1, 2, 2], dict(coord="asymmetric", near="simple")),
        ("resize_nearest_down_ceil", (2, 7, 5), [-1, 3, 2], [], dict(near="round_prefer_ceil")),
        ("resize_linear_half_pixel", (1, 1, 5, 7), [-1, -1, 8, 3], [], dict(mode="linear")),
        ("resize_linear_align_corners", (2, 6), [5, 11], [], dict(mode="linear", coord="align_corners")),
        ("resize_cubic_exclude", (1, 1, 4, 6), [-1, -1, 7, 9], [], dict(mode="cubic", a=-0.5, excl=True)),
        ("resize_cubic_asymmetric", (3, 8), [-1, 5], [], dict(mode="cubic", coord="asymmetric")),
        ("resize_align_corners_scales", (2, 4, 9), [-1, 2, 5], [1, 0.6, 0.6], dict(mode="cubic", coord="align_corners")),
        ("resize_pytorch_one_cubic", (2, 7), [-1, 1], [], dict(mode="cubic", coord="pytorch_half_pixel")),
        ("resize_linear_antialias", (1, 2, 17, 4), [-1, -1, 5, 4], [], dict(mode="linear", antialias=True)),
        ("resize_cubic_antialias", (1, 13), [-1, 4], [], dict(mode="cubic", antialias=True)),
        ("resize_pytorch_one", (2, 9), [-1, 1], [], dict(mode="linear", coord="pytorch_half_pixel")),
        ("resize_symmetric_scales", (1, 4, 5), [-1, 7, 11], [1, 1.75, 2.3],
         dict(mode="linear", coord="half_pixel_symmetric")),
        ("resize_tf_crop", (1, 6, 7), [-1, 4, 9], [], dict(mode="linear", coord="tf_crop_and_resize",
                                                         roi=[0, 0.1, -0.2, 1, 0.8, 1.1], extra=-3.0)),
    ]
    for name, xs, sizes, scales, kw in cases:
        x = rn(rng_for(name), *xs, s=2.0)
        names = {"mode": "nearest", "coord": "half_pixel", "near": "round_prefer_floor", "a": -0.75, "excl": False,
                 "antialias": False, "roi": None, "extra": 0.0}
        text = {"mode": "mode", "coord": "coord", "near": "nearest", "a": "cubic_a", "excl": "exclude_outside",
                "antialias": "antialias", "roi": "roi", "extra": "extrapolation"}
        attrs = [f"sizes = [{', '.join(str(v) for v in sizes)}]"]
        if scales:
            attrs.append(f"scales = [{', '.join(fl(v) for v in scales)}]")
        for k, default in names.items():
            v = kw.get(k, default)
            if v == default:
                continue
            if isinstance(v, bool):
                attrs.append(f"{text[k]} = true")
            elif isinstance(v, list):
                attrs.append(f"{text[k]} = [{', '.join(fl(e) for e in v)}]")
            elif isinstance(v, float):
                attrs.append(f"{text[k]} = {fl(v)}")
            else:
                attrs.append(f"{text[k]} = {v}")
        want = resize_ref(x, sizes, scales, **kw)
        emit(name, "resize", {"x": x}, [f"y = resize(x) {{{', '.join(attrs)}}}"], {"y": want}, tol=SIMPLE)


def cases_recurrent():
    T, N, I, H = 5, 3, 7, 5

    def lstm_case(name, direction, h0=False, c0=False, peep=False):
        rng = rng_for(name)
        D = 2 if direction == "bidirectional" else 1
        x = rn(rng, T, N, I)
        w, r, b = rn(rng, D, 4 * H, I, s=0.4), rn(rng, D, 4 * H, H, s=0.4), rn(rng, D, 8 * H, s=0.3)
        inputs = {"x": x}
        args = ["x", "w", "r", "b"]
        H0 = C0 = None
        if h0:
            H0 = rn(rng, D, N, H, s=0.5)
            inputs["h0"] = H0
            args.append("h0")
        if c0:
            C0 = rn(rng, D, N, H, s=0.5)
            inputs["c0"] = C0
            args.append("c0")
        params = {"w": w, "r": r, "b": b}
        P = None
        if peep:
            P = rn(rng, D, 3 * H, s=0.5)
            params["p"] = P
            args.append("p")
        attrs = [f"hidden = {H}"] + ([] if direction == "forward" else [f"direction = {direction}"])
        y, hN, cN = lstm_ref(x, w, r, b, H0, C0, H, direction, P)
        emit(name, "lstm", inputs, [f"y, h, c = lstm({', '.join(args)}) {{{', '.join(attrs)}}}"],
             {"y": y, "h": hN, "c": cN}, params=params, tol=LONG)

    lstm_case("lstm_forward", "forward")
    lstm_case("lstm_forward_h0c0", "forward", True, True)
    lstm_case("lstm_forward_h0only", "forward", True, False)
    lstm_case("lstm_reverse_h0c0", "reverse", True, True)
    lstm_case("lstm_bidirectional", "bidirectional")
    lstm_case("lstm_bidirectional_h0c0", "bidirectional", True, True)
    lstm_case("lstm_peephole_forward", "forward", True, True, peep=True)
    lstm_case("lstm_peephole_bidirectional", "bidirectional", True, True, peep=True)
    lstm_case("lstm_peephole_reverse", "reverse", True, True, peep=True)

    def gru_case(name, direction, h0, lbr):
        rng = rng_for(name)
        D = 2 if direction == "bidirectional" else 1
        x = rn(rng, T, N, I)
        w, r, b = rn(rng, D, 3 * H, I, s=0.4), rn(rng, D, 3 * H, H, s=0.4), rn(rng, D, 6 * H, s=0.3)
        inputs = {"x": x}
        args = ["x", "w", "r", "b"]
        H0 = None
        if h0:
            H0 = rn(rng, D, N, H, s=0.5)
            inputs["h0"] = H0
            args.append("h0")
        attrs = [f"hidden = {H}"]
        if direction != "forward":
            attrs.append(f"direction = {direction}")
        if lbr:
            attrs.append("linear_before_reset = true")
        y, hN = gru_ref(x, w, r, b, H0, H, direction, lbr)
        emit(name, "gru", inputs, [f"y, h = gru({', '.join(args)}) {{{', '.join(attrs)}}}"],
             {"y": y, "h": hN}, params={"w": w, "r": r, "b": b}, tol=LONG)

    gru_case("gru_forward", "forward", False, False)
    gru_case("gru_forward_h0_lbr", "forward", True, True)
    gru_case("gru_reverse_h0", "reverse", True, False)
    gru_case("gru_bidirectional_h0", "bidirectional", True, False)
    gru_case("gru_bidirectional_lbr", "bidirectional", False, True)


# ----------------------------------------------------------------------------------
# attention


def cases_attention():
    def att(name, B, Tq, Tk, E, Ev, heads=1, causal=False, mask_shape=None, scale=None):
        rng = rng_for(name)
        q, k, v = rn(rng, B, Tq, E), rn(rng, B, Tk, E), rn(rng, B, Tk, Ev)
        inputs = {"q": q, "k": k, "v": v}
        args = ["q", "k", "v"]
        mask = None
        if mask_shape is not None:
            mask = rn(rng, *mask_shape)
            mask[rng.random(mask_shape) < 0.2] = -1e4  # some strongly masked positions
            inputs["mask"] = mask
            args.append("mask")
        attrs = []
        if heads != 1:
            attrs.append(f"heads = {heads}")
        if scale is not None:
            attrs.append(f"scale = {fl(scale)}")
        if causal:
            attrs.append("causal = true")
        a = f" {{{', '.join(attrs)}}}" if attrs else ""
        y = attention_ref(q, k, v, mask, heads, scale, causal)
        emit(name, "attention", inputs, [f"y = attention({', '.join(args)}){a}"], {"y": y}, tol=LONG)

    att("attention_h1", 2, 5, 5, 6, 7)
    att("attention_h3_ev", 2, 5, 7, 6, 9, heads=3)
    att("attention_causal_square_h3", 2, 5, 5, 6, 9, heads=3, causal=True)
    att("attention_causal_rect", 1, 3, 7, 5, 5, causal=True)
    att("attention_causal_rect_h3", 2, 2, 5, 9, 6, heads=3, causal=True)
    att("attention_mask4_scale_h3", 2, 5, 7, 6, 9, heads=3, mask_shape=(2, 1, 5, 7), scale=0.25)
    att("attention_mask2_causal", 2, 5, 5, 7, 3, causal=True, mask_shape=(5, 5))
    att("attention_mask_heads_h3", 1, 3, 5, 6, 3, heads=3, mask_shape=(1, 3, 3, 5))


# ----------------------------------------------------------------------------------
# quantization


def cases_quant():
    # --- quantize. The interpreter computes round_half_even(x / scale) + zp, with
    # x / scale an f32 division, then clamps to the dtype's range.
    name = "quantize_i8_halves_pow2"
    rng = rng_for(name)
    s, zp = 0.125, -3
    x = rn(rng, 5, 7, s=2.0).reshape(-1)
    special = (np.array([-4.5, -3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 4.5]) * s).tolist()
    special += [100.0, -100.0, 15.9, -16.4, 16.0, -15.5]  # saturation, around the i8 limits
    x[: len(special)] = special
    x = x.astype(F32)
    rng.shuffle(x)
    x = x.reshape(5, 7)
    emit(name, "quantize", {"x": x}, [f"y = quantize(x) {{scale = {fl(s)}, zero_point = {zp}}}"],
         {"y": quantize_ref(x, s, zp, "i8")}, tol=EXACT)

    name = "quantize_u8_f32div_halves"
    rng = rng_for(name)
    s, zp = 0.05, 128
    # values whose f32 quotient x / scale is exactly k + 0.5 (the f32 division rule)
    found = []
    for kk in range(-60, 60):
        xv = F32((kk + 0.5) * float(F32(s)))
        if F32(xv) / F32(s) == F32(kk + 0.5):
            found.append(float(xv))
    special = found[::5][:12] + [20.0, -20.0, 6.35, -6.4, 7.0]
    x = rn(rng, 5, 7, s=2.0).reshape(-1)
    x[: len(special)] = special
    rng.shuffle(x)
    x = x.reshape(5, 7).astype(F32)
    y = quantize_ref(x, s, zp, "u8", check_robust=False)
    # the random part is robust anyway; only the listed boundary values use the f32 rule
    emit(name, "quantize", {"x": x}, [f"y = quantize(x) {{dtype = u8, scale = {fl(s)}, zero_point = {zp}}}"],
         {"y": y}, tol=EXACT)

    name = "quantize_i8_axis0"
    rng = rng_for(name)
    sc, zps = [0.0625, 0.03125, 0.25], [0, -5, 7]
    x = rn(rng, 3, 7, s=2.0)
    x[0, :3] = [0.03125, -0.09375, 20.0]   # k + 0.5 at 0.0625, saturation
    x[1, :3] = [0.046875, -5.0, 0.015625]
    x[2, :3] = [0.375, -0.125, -40.0]
    emit(name, "quantize", {"x": x},
         [f"y = quantize(x) {{scale = {flist(sc)}, zero_point = {ilist(zps)}, axis = 0}}"],
         {"y": quantize_ref(x, sc, zps, "i8", axis=0)}, tol=EXACT)

    name = "quantize_u8_axis1"
    rng = rng_for(name)
    sc, zps = [0.02, 0.1, 0.0625, 0.5, 0.03], [128, 0, 10, 255, 100]
    for attempt in range(50):
        rng = rng_for(name, attempt)
        x = rn(rng, 4, 5, s=3.0)
        try:
            y = quantize_ref(x, sc, zps, "u8", axis=1)
            break
        except AssertionError:
            continue
    emit(name, "quantize", {"x": x},
         [f"y = quantize(x) {{dtype = u8, scale = {flist(sc)}, zero_point = {ilist(zps)}, axis = 1}}"],
         {"y": y}, tol=EXACT)

    # --- dequantize: (q - zp) * scale in f32
    name = "dequantize_i8"
    q = rint_vals(rng_for(name), -128, 127, 5, 7, dtype=np.int8)
    q[0, :2] = [-128, 127]
    emit(name, "dequantize", {"x": q}, ["y = dequantize(x)"], {"y": dequantize_ref(q, 0.05, 3)},
         in_types={"x": tstr("i8", q.shape, qtype(0.05, 3))}, tol=(1e-6, 1e-7))
    name = "dequantize_u8_axis0"
    sc, zps = [0.1, 0.02, 0.0625], [128, 0, 3]
    q = rint_vals(rng_for(name), 0, 255, 3, 7, dtype=np.uint8)
    emit(name, "dequantize", {"x": q}, ["y = dequantize(x)"], {"y": dequantize_ref(q, sc, zps, axis=0)},
         in_types={"x": tstr("u8", q.shape, qtype(sc, zps, axis=0))}, tol=(1e-6, 1e-7))
    name = "dequantize_i8_axis1"
    sc, zps = [0.5, 0.25, 0.01, 0.07, 0.125], [0, -1, 2, 0, 5]
    q = rint_vals(rng_for(name), -128, 127, 2, 3, 5, dtype=np.int8)
    emit(name, "dequantize", {"x": q}, ["y = dequantize(x)"], {"y": dequantize_ref(q, sc, zps, axis=2)},
         in_types={"x": tstr("i8", q.shape, qtype(sc, zps, axis=2))}, tol=(1e-6, 1e-7))
    name = "dequantize_param"
    q = rint_vals(rng_for(name), -128, 127, 3, 5, dtype=np.int8)
    x = rn(rng_for(name), 3, 5)
    emit(name, "dequantize", {"x": x}, ["dw = dequantize(w)", "y = add(x, dw)"],
         {"y": d(x) + d(dequantize_ref(q, 0.03125, -2))}, params={"w": q},
         param_types={"w": tstr("i8", q.shape, qtype(0.03125, -2))})

    name = "quant_roundtrip_i8"
    x = rn(rng_for(name), 3, 13)
    qx = quantize_ref(x, 0.03125, 4, "i8")
    emit(name, "quantize", {"x": x}, [f"q = quantize(x) {{scale = {fl(0.03125)}, zero_point = 4}}", "y = dequantize(q)"],
         {"q": qx, "y": dequantize_ref(qx, 0.03125, 4)}, tol=EXACT)

    # --- qmatmul
    def qmm(name, M_shape, K, N, a_dt, za, sa, b_zp, b_sc, per_col, bias, out_dt, so=None, zo=0, b_dt="i8",
            force_ties=False):
        for attempt in range(200):
            rng = rng_for(name, attempt)
            lo, hi = INT_RANGE[a_dt]
            a = rng.integers(lo, hi + 1, (*M_shape, K)).astype(NP_OF[a_dt])
            blo, bhi = INT_RANGE[b_dt]
            b = rng.integers(blo, bhi + 1, (K, N)).astype(NP_OF[b_dt])
            bias_v = rng.integers(-3000, 3000, N).astype(np.int32) if bias else None
            sb_cols = np.asarray(b_sc if per_col else [b_sc] * N, F32)
            zb_cols = np.asarray(b_zp if per_col else [b_zp] * N, np.int64)
            acc = qmatmul_acc(a, za, b, zb_cols)
            if bias and force_ties:
                # move the bias so that the first row of every column lands exactly on
                # a .5 tie of the requantization (round half to even gets exercised)
                first = acc.reshape(-1, N)[0]
                for n in range(N):
                    period = 1.0 / (float(F32(sa)) * float(sb_cols[n]) / float(F32(so)))
                    assert period == int(period) and int(period) % 2 == 0, "force_ties needs power-of-2 scales"
                    period = int(period)
                    bias_v[n] += (period // 2 - (int(first[n]) + int(bias_v[n]))) % period + period * int(rng.integers(-2, 3))
            if bias:
                acc = acc + bias_v.astype(np.int64)
            assert np.all(np.abs(acc) < 2**31)
            if out_dt == "i32":
                y = acc.astype(np.int32)
                break
            try:
                y = requantize_ref(acc, sa, sb_cols, so, zo, out_dt)
                break
            except Ambiguous:
                continue
        else:
            raise RuntimeError(f"{name}: could not find order-independent data")
        params = {"w": b}
        ptypes = {"w": tstr(b_dt, b.shape, qtype(b_sc, b_zp, axis=1) if per_col else qtype(b_sc, b_zp))}
        args = "a, w"
        if bias:
            params["bias"] = bias_v
            args += ", bias"
        attrs = []
        if out_dt != "i32":
            attrs = [f"dtype = {out_dt}", f"scale = {fl(so)}"] + ([f"zero_point = {zo}"] if zo != 0 else [])
        at = f" {{{', '.join(attrs)}}}" if attrs else ""
        emit(name, "qmatmul", {"a": a}, [f"y = qmatmul({args}){at}"], {"y": y}, params=params, param_types=ptypes,
             in_types={"a": tstr(a_dt, a.shape, qtype(sa, za))}, tol=EXACT)

    qmm("qmatmul_i32_out", (5,), 7, 3, "i8", 2, 0.0625, 0, 0.03125, False, False, "i32")
    qmm("qmatmul_i32_bias_percol_batched", (2, 3), 7, 5, "u8", 128, 0.05, [1, -2, 0, 3, 0],
        [0.02, 0.03, 0.015625, 0.1, 0.07], True, True, "i32")
    qmm("qmatmul_i8_requant_pow2", (5,), 13, 6, "i8", -3, 0.0625, [0, 0, 1, -1, 0, 2],
        [0.03125, 0.0078125, 0.015625, 0.0625, 0.125, 0.00390625], True, True, "i8", so=0.25, zo=-5,
        force_ties=True)
    qmm("qmatmul_u8_requant_percol", (3,), 11, 5, "u8", 120, 0.05, [0, 0, 0, 0, 0],
        [0.01, 0.02, 0.005, 0.03, 0.015], True, True, "u8", so=0.4, zo=100)
    qmm("qmatmul_i8_requant_tensor", (2, 5), 7, 3, "i8", 0, 0.1, 0, 0.02, False, False, "i8", so=0.3, zo=3)

    # --- qconv
    def qconv(name, nd, xs, ws, x_dt, zx, sx, w_sc, w_zp, per_ch, bias, out_dt, so=None, zo=0,
              stride=None, pad=None, groups=1, force_ties=False):
        for attempt in range(200):
            rng = rng_for(name, attempt)
            lo, hi = INT_RANGE[x_dt]
            x = rng.integers(lo, hi + 1, xs).astype(NP_OF[x_dt])
            w = rng.integers(-128, 128, ws).astype(np.int8)
            M = ws[0]
            bias_v = rng.integers(-5000, 5000, M).astype(np.int32) if bias else None
            sw = np.asarray(w_sc if per_ch else [w_sc] * M, F32)
            zw = np.asarray(w_zp if per_ch else [w_zp] * M, np.int64)
            xs_ = x.astype(np.int64) - zx
            ws_ = w.astype(np.int64) - zw.reshape([-1] + [1] * (len(ws) - 1))
            if nd == 3:
                # float64 holds these integer sums exactly
                acc = np.rint(convnd_ref(xs_, ws_, None, stride, pad, None, groups)).astype(np.int64)
            elif nd == 2:
                acc = conv2d_ref(xs_, ws_, None, stride or (1, 1), pad or (0, 0, 0, 0), (1, 1), groups)
            else:
                acc = conv1d_ref(xs_, ws_, None, stride or (1,), pad or (0, 0), (1,), groups)
            if bias and force_ties:
                # as in qmm: the first output position of every channel is a .5 tie
                first = acc.reshape(acc.shape[0], M, -1)[0, :, 0]
                for m in range(M):
                    period = 1.0 / (float(F32(sx)) * float(sw[m]) / float(F32(so)))
                    assert period == int(period) and int(period) % 2 == 0, "force_ties needs power-of-2 scales"
                    period = int(period)
                    bias_v[m] += (period // 2 - (int(first[m]) + int(bias_v[m]))) % period + period * int(rng.integers(-2, 3))
            if bias:
                acc = acc + bias_v.astype(np.int64).reshape([-1] + [1] * nd)
            if out_dt == "i32":
                y = acc.astype(np.int32)
                break
            try:
                # per output channel: move channels last for the per-column helper
                accm = np.moveaxis(acc, 1, -1)
                y = np.moveaxis(requantize_ref(accm, sx, sw, so, zo, out_dt), -1, 1)
                break
            except Ambiguous:
                continue
        else:
            raise RuntimeError(name)
        params = {"w": w}
        ptypes = {"w": tstr("i8", w.shape, qtype(w_sc, w_zp, axis=0) if per_ch else qtype(w_sc, w_zp))}
        args = "x, w"
        if bias:
            params["bias"] = bias_v
            args += ", bias"
        attrs = []
        if stride:
            attrs.append(f"stride = {ilist(stride)}")
        if pad:
            attrs.append(f"pad = {ilist(pad)}")
        if groups != 1:
            attrs.append(f"groups = {groups}")
        if out_dt != "i32":
            attrs += [f"dtype = {out_dt}", f"scale = {fl(so)}"] + ([f"zero_point = {zo}"] if zo != 0 else [])
        at = f" {{{', '.join(attrs)}}}" if attrs else ""
        emit(name, "qconv", {"x": x}, [f"y = qconv{nd}d({args}){at}"], {"y": y}, params=params, param_types=ptypes,
             in_types={"x": tstr(x_dt, x.shape, qtype(sx, zx))}, tol=EXACT)

    qconv("qconv2d_i8_perch_requant", 2, (1, 3, 7, 7), (4, 3, 3, 3), "u8", 128, 0.03125,
          [0.0078125, 0.015625, 0.00390625, 0.03125], [0, 0, 0, 0], True, True, "i8", so=0.5, zo=-2, pad=(1, 1, 1, 1),
          force_ties=True)
    qconv("qconv2d_u8_perch_stride", 2, (2, 3, 9, 7), (5, 3, 3, 2), "i8", -4, 0.05,
          [0.01, 0.02, 0.013, 0.007, 0.03], [0, 0, 0, 0, 0], True, True, "u8", so=1.7, zo=120,
          stride=(2, 1), pad=(1, 0, 0, 1))
    qconv("qconv2d_i32_tensor", 2, (1, 4, 5, 5), (4, 2, 3, 3), "i8", 3, 0.1, 0.02, 1, False, False, "i32",
          groups=2, pad=(1, 1, 1, 1))
    qconv("qconv1d_i8_requant", 1, (2, 3, 11), (4, 3, 3), "u8", 100, 0.0625,
          [0.015625, 0.0078125, 0.03125, 0.0625], [0, 0, 0, 0], True, True, "i8", so=0.25, zo=0,
          stride=(2,), pad=(2, 0), force_ties=True)
    qconv("qconv3d_u8_perch_requant", 3, (1, 3, 4, 5, 5), (4, 3, 2, 3, 2), "u8", 120, 0.05,
          [0.01, 0.02, 0.013, 0.007], [0, 0, 0, 0], True, True, "i8", so=1.3, zo=3,
          stride=(1, 2, 1), pad=(1, 0, 1, 0, 1, 1))


# ----------------------------------------------------------------------------------
# sparse


def dense_to_csr(Wd):
    values, indices, offsets = [], [], [0]
    for row in Wd:
        for j, v in enumerate(row):
            if v != 0:
                values.append(v)
                indices.append(j)
        offsets.append(len(values))
    return np.array(values, F32), np.array(indices, np.int32), np.array(offsets, np.int32)


def dense_to_bsr(Wd, br, bc):
    K, C = Wd.shape
    assert K % br == 0 and C % bc == 0
    values, indices, offsets = [], [], [0]
    for bi in range(K // br):
        for bj in range(C // bc):
            blk = Wd[bi * br : (bi + 1) * br, bj * bc : (bj + 1) * bc]
            if np.any(blk != 0):
                values.append(blk)
                indices.append(bj)
        offsets.append(len(values))
    return np.array(values, F32).reshape(-1, br, bc), np.array(indices, np.int32), np.array(offsets, np.int32)


def cases_sparse():
    def csr(name, xs, K, cols, density, empty_row=None):
        rng = rng_for(name)
        Wd = rn(rng, K, cols) * (rng.random((K, cols)) < density)
        if empty_row is not None:
            Wd[empty_row] = 0
        Wd = Wd.astype(F32)
        vals, idx, offs = dense_to_csr(Wd)
        x = rn(rng, *xs, K)
        emit(name, "sparse", {"x": x}, [f"y = sparse_matmul(x, values, indices, offsets) {{cols = {cols}}}"],
             {"y": d(x) @ d(Wd)}, params={"values": vals, "indices": idx, "offsets": offs})

    def bsr(name, xs, K, cols, br, bc, density):
        rng = rng_for(name)
        mask = rng.random((K // br, cols // bc)) < density
        mask[0, :] = False  # an empty block row
        Wd = rn(rng, K, cols) * np.kron(mask, np.ones((br, bc)))
        Wd = Wd.astype(F32)
        vals, idx, offs = dense_to_bsr(Wd, br, bc)
        x = rn(rng, *xs, K)
        emit(name, "sparse", {"x": x},
             [f"y = sparse_matmul(x, values, indices, offsets) {{format = bsr, cols = {cols}, block = [{br}, {bc}]}}"],
             {"y": d(x) @ d(Wd)}, params={"values": vals, "indices": idx, "offsets": offs})

    csr("sparse_csr", (3,), 13, 7, 0.3)
    csr("sparse_csr_batched_empty_row", (2, 3), 11, 17, 0.25, empty_row=4)
    bsr("sparse_bsr_2x3", (5,), 10, 15, 2, 3, 0.4)
    bsr("sparse_bsr_2x3_batched", (2, 3), 8, 9, 2, 3, 0.5)


# ----------------------------------------------------------------------------------
# routing / MoE


def nms_ref(boxes, scores, max_per_class, iou, score_threshold, center):
    """ONNX NonMaxSuppression in float32: per batch and class, candidates above
    the score threshold best first (ties: lower index), kept unless their IoU
    with a kept box exceeds `iou`."""
    def extent(v):
        if center:
            hw, hh = v[2] / F32(2), v[3] / F32(2)
            return v[0] - hw, v[0] + hw, v[1] - hh, v[1] + hh
        return min(v[1], v[3]), max(v[1], v[3]), min(v[0], v[2]), max(v[0], v[2])

    def suppress(p, q):
        (a0, a1, a2, a3), (b0, b1, b2, b3) = extent(p), extent(q)
        ix0, ix1 = max(a0, b0), min(a1, b1)
        if ix1 <= ix0:
            return False
        iy0, iy1 = max(a2, b2), min(a3, b3)
        if iy1 <= iy0:
            return False
        inter = (ix1 - ix0) * (iy1 - iy0)
        s1, s2 = (a1 - a0) * (a3 - a2), (b1 - b0) * (b3 - b2)
        union = s1 + s2 - inter
        if inter <= 0 or s1 <= 0 or s2 <= 0 or union <= 0:
            return False
        return inter / union > F32(iou)

    out = []
    for b in range(boxes.shape[0]):
        for c in range(scores.shape[1]):
            s = scores[b, c]
            cand = [i for i in range(len(s)) if score_threshold is None or s[i] > F32(score_threshold)]
            cand.sort(key=lambda i: (-s[i], i))
            kept = []
            for i in cand:
                if len(kept) >= max_per_class:
                    break
                if not any(suppress(boxes[b, i], boxes[b, j]) for j in kept):
                    kept.append(i)
                    out.append([b, c, i])
    return np.array(out, np.int64).reshape(-1, 3)


def cases_routing():
    # nms: overlapping boxes (clusters), corners in either order or centers,
    # with and without a score threshold.
    rng = rng_for("nms_corners")
    centers = rng.uniform(0, 4, (2, 4, 2)).repeat(3, axis=1) + rng.normal(0, 0.3, (2, 12, 2))
    size = rng.uniform(0.5, 2.0, (2, 12, 2))
    lo, hi = centers - size / 2, centers + size / 2
    flip = rng.random((2, 12, 1)) < 0.3
    corners = np.where(flip, np.concatenate([hi, lo], -1), np.concatenate([lo, hi], -1)).astype(F32)
    scores = rng.random((2, 3, 12)).astype(F32)
    emit("nms_corners", "nms", {"boxes": corners, "scores": scores},
         ["y = nms(boxes, scores) {max_per_class = 4, iou_threshold = 0.3, score_threshold = 0.25, count = K}"],
         {"y": nms_ref(corners, scores, 4, 0.3, 0.25, False)}, tol=EXACT)
    # unique: numpy's unique (first indices, inverse, counts); -0 and 0 equal;
    # in order of first appearance (`sorted = false`) by reordering numpy's.
    x = rint_vals(rng_for("unique_flat"), -3, 3, 4, 5)
    x[0, 0], x[2, 1] = -0.0, 0.0
    y, idx, inv, cnt = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    emit("unique_flat", "unique", {"x": x}, ["y, idx, inv, cnt = unique(x) {count = K}"],
         {"y": y, "idx": idx.astype(np.int64), "inv": inv.reshape(-1).astype(np.int64), "cnt": cnt.astype(np.int64)}, tol=EXACT)
    cols = rng_for("unique_axis").integers(-2, 3, (3, 4)).astype(np.int64)
    xi = cols[:, [2, 0, 2, 3, 0, 1, 3]]
    y, idx, inv, cnt = np.unique(xi, axis=1, return_index=True, return_inverse=True, return_counts=True)
    first = np.argsort(idx, kind="stable")
    rank = np.empty_like(first)
    rank[first] = np.arange(len(first))
    emit("unique_axis_unsorted", "unique", {"x": xi}, ["y, idx, inv, cnt = unique(x) {axis = 1, sorted = false, count = K}"],
         {"y": y[:, first], "idx": idx[first].astype(np.int64), "inv": rank[inv.reshape(-1)].astype(np.int64),
          "cnt": cnt[first].astype(np.int64)}, tol=EXACT)
    cbox = np.concatenate([centers, size], -1).astype(F32)
    emit("nms_centers", "nms", {"boxes": cbox, "scores": scores},
         ["y = nms(boxes, scores) {max_per_class = 12, iou_threshold = 0.5, center_point_box = true, count = K}"],
         {"y": nms_ref(cbox, scores, 12, 0.5, None, True)}, tol=EXACT)
    def tk(name, x, k, axis, largest):
        vals, idx = topk_ref(x, k, axis, largest)
        attrs = [f"k = {k}"]
        if axis != -1:
            attrs.append(f"axis = {axis}")
        if not largest:
            attrs.append("largest = false")
        emit(name, "topk", {"x": x}, [f"values, indices = topk(x) {{{', '.join(attrs)}}}"],
             {"values": vals, "indices": idx}, tol=EXACT)

    tk("topk_largest_ties", rint_vals(rng_for("topk_largest_ties"), -2, 2, 3, 7), 3, -1, True)
    tk("topk_smallest_axis0_ties", rint_vals(rng_for("topk_smallest_axis0_ties"), -2, 2, 7, 5), 2, 0, False)
    tk("topk_largest_3d", rn(rng_for("topk_largest_3d"), 2, 3, 13), 5, -1, True)
    tk("topk_largest_axis0", rn(rng_for("topk_largest_axis0"), 7, 3), 4, 0, True)
    tk("topk_smallest_last_k1", rint_vals(rng_for("topk_smallest_last_k1"), 0, 3, 5, 6), 1, -1, False)

    def distinct_idx(rng, T, k, E):
        return np.stack([rng.permutation(E)[:k] for _ in range(T)]).astype(np.int64)

    def dispatch(name, T, D, k, E, cap):
        rng = rng_for(name)
        x = rn(rng, T, D)
        idx = distinct_idx(rng, T, k, E)
        slot = moe_slots(idx, E, cap)
        out = np.zeros((E, cap, D), F32)
        for t in range(T):
            for j in range(k):
                if slot[t, j] >= 0:
                    out[idx[t, j], slot[t, j]] = x[t]
        emit(name, "moe_dispatch", {"x": x, "idx": idx}, [f"y = moe_dispatch(x, idx) {{experts = {E}, capacity = {cap}}}"],
             {"y": out}, tol=EXACT)
        return (slot < 0).sum()

    assert dispatch("moe_dispatch_cap_drop", 7, 5, 2, 3, 3) > 0
    assert dispatch("moe_dispatch_k1_nodrop", 5, 3, 1, 4, 5) == 0
    assert dispatch("moe_dispatch_k2_drop_e5", 11, 3, 2, 5, 3) > 0

    def combine(name, T, D, k, E, cap):
        rng = rng_for(name)
        y = rn(rng, E, cap, D)
        idx = distinct_idx(rng, T, k, E)
        w = ru(rng, 0.0, 1.0, T, k)
        slot = moe_slots(idx, E, cap)
        out = np.zeros((T, D))
        for t in range(T):
            for j in range(k):
                if slot[t, j] >= 0:
                    out[t] += float(w[t, j]) * d(y[idx[t, j], slot[t, j]])
        emit(name, "moe_combine", {"y": y, "idx": idx, "w": w}, [f"out = moe_combine(y, idx, w) {{capacity = {cap}}}"],
             {"out": out})
        return (slot < 0).sum()

    assert combine("moe_combine_cap_drop", 7, 5, 2, 3, 3) > 0
    assert combine("moe_combine_k1_nodrop", 6, 4, 1, 3, 6) == 0

    def moe(name, T, D, E, H, k, act, cf, want_drop):
        for attempt in range(100):
            rng = rng_for(name, attempt)
            x = rn(rng, T, D)
            gate, w1, w2 = rn(rng, D, E), rn(rng, E, D, H, s=0.5), rn(rng, E, H, D, s=0.5)
            try:
                y, slot = moe_ref(x, gate, w1, w2, k, act, cf)
            except AssertionError:
                continue
            if want_drop == ((slot < 0).sum() > 0):
                break
        else:
            raise RuntimeError(name)
        attrs = [f"k = {k}"]
        if act != "relu":
            attrs.append(f"activation = {act}")
        if cf != 0:
            attrs.append(f"capacity_factor = {fl(cf)}")
        emit(name, "moe", {"x": x}, ["logits = matmul(x, gate)", f"y = moe(x, logits, w1, w2) {{{', '.join(attrs)}}}"], {"y": y},
             params={"gate": gate, "w1": w1, "w2": w2}, tol=LONG)

    moe("moe_k2_relu_nocap", 7, 5, 4, 6, 2, "relu", 0, False)
    moe("moe_k1_gelu_nocap", 7, 5, 3, 6, 1, "gelu", 0, False)
    moe("moe_k2_relu_cap_drop", 7, 5, 4, 6, 2, "relu", 0.75, True)   # capacity ceil(2.625) = 3
    moe("moe_k1_gelu_cap_drop", 9, 3, 3, 5, 1, "gelu", 0.5, True)    # capacity ceil(1.5) = 2
    moe("moe_k2_gelu_cap_drop", 11, 6, 5, 7, 2, "gelu", 1.25, True)  # capacity ceil(5.5) = 6


# ----------------------------------------------------------------------------------
# fused forms


def cases_fused():
    name = "fused_conv2d_bias_relu_residual"
    rng = rng_for(name)
    x, w, b, res = rn(rng, 1, 3, 7, 7), rn(rng, 4, 3, 3, 3, s=0.5), rn(rng, 4), rn(rng, 1, 4, 7, 7)
    y = np.maximum(conv2d_ref(d(x), d(w), d(b), pad=(1, 1, 1, 1)) + d(res), 0)
    emit(name, "fused", {"x": x, "res": res}, ["y = fused_conv2d(x, w, b, res) {pad = [1, 1, 1, 1], activation = relu}"],
         {"y": y}, params={"w": w, "b": b})
    name = "fused_conv2d_stride_relu"
    rng = rng_for(name)
    x, w, b = rn(rng, 2, 3, 9, 7), rn(rng, 5, 3, 3, 3, s=0.5), rn(rng, 5)
    y = np.maximum(conv2d_ref(d(x), d(w), d(b), stride=(2, 2), pad=(1, 0, 1, 0)), 0)
    emit(name, "fused", {"x": x}, ["y = fused_conv2d(x, w, b) {stride = [2, 2], pad = [1, 0, 1, 0], activation = relu}"],
         {"y": y}, params={"w": w, "b": b})
    name = "fused_conv2d_zero_bias_residual"
    rng = rng_for(name)
    x, w, res = rn(rng, 1, 4, 5, 5), rn(rng, 4, 2, 3, 3, s=0.5), rn(rng, 1, 4, 5, 5)
    b = np.zeros(4, F32)
    y = conv2d_ref(d(x), d(w), None, pad=(1, 1, 1, 1), groups=2) + d(res)
    emit(name, "fused", {"x": x, "res": res}, ["y = fused_conv2d(x, w, b, res) {pad = [1, 1, 1, 1], groups = 2}"],
         {"y": y}, params={"w": w, "b": b})
    name = "fused_conv1d_causal_gelu_residual"
    rng = rng_for(name)
    x, w, b, res = rn(rng, 2, 3, 11), rn(rng, 5, 3, 3, s=0.5), rn(rng, 5), rn(rng, 2, 5, 11)
    y = gelu(conv1d_ref(d(x), d(w), d(b), pad=(4, 0), dil=(2,)) + d(res))
    emit(name, "fused", {"x": x, "res": res},
         ["y = fused_conv1d(x, w, b, res) {pad = [4, 0], dilation = [2], activation = gelu}"],
         {"y": y}, params={"w": w, "b": b}, tol=TRANS)
    name = "fused_conv1d_relu"
    rng = rng_for(name)
    x, w, b = rn(rng, 1, 4, 13), rn(rng, 3, 4, 5, s=0.5), rn(rng, 3)
    y = np.maximum(conv1d_ref(d(x), d(w), d(b), stride=(2,), pad=(2, 2)), 0)
    emit(name, "fused", {"x": x}, ["y = fused_conv1d(x, w, b) {stride = [2], pad = [2, 2], activation = relu}"],
         {"y": y}, params={"w": w, "b": b})

    name = "fused_conv3d_bias_relu_residual"
    rng = rng_for(name)
    x, w, b, res = rn(rng, 1, 3, 4, 5, 6), rn(rng, 4, 3, 2, 3, 3, s=0.5), rn(rng, 4), rn(rng, 1, 4, 4, 2, 6)
    y = np.maximum(convnd_ref(x, w, b, stride=(1, 2, 1), pad=(1, 1, 1, 0, 0, 1)) + d(res), 0)
    emit(name, "fused", {"x": x, "res": res},
         ["y = fused_conv3d(x, w, b, res) {stride = [1, 2, 1], pad = [1, 1, 1, 0, 0, 1], activation = relu}"],
         {"y": y}, params={"w": w, "b": b})

    name = "fused_matmul_relu_add"
    rng = rng_for(name)
    a, w, bias = rn(rng, 5, 7), rn(rng, 7, 3), rn(rng, 3)
    emit(name, "fused", {"a": a}, ["y = fused_matmul(a, w, bias) {epilogue = relu(add($0, $1))}"],
         {"y": np.maximum(d(a) @ d(w) + d(bias), 0)}, params={"w": w, "bias": bias})
    name = "fused_matmul_clip"
    rng = rng_for(name)
    a, w = rn(rng, 2, 3, 7), rn(rng, 7, 5)
    emit(name, "fused", {"a": a}, [f"y = fused_matmul(a, w) {{epilogue = clip($0, {fl(-0.5)}, {fl(0.5)})}}"],
         {"y": np.clip(d(a) @ d(w), -0.5, 0.5)}, params={"w": w})
    name = "fused_matmul_two_extra"
    rng = rng_for(name)
    a, w, e1, e2 = rn(rng, 3, 13), rn(rng, 13, 5), rn(rng, 5), rn(rng, 3, 1)
    emit(name, "fused", {"a": a, "e1": e1, "e2": e2}, ["y = fused_matmul(a, w, e1, e2) {epilogue = mul(add($0, $1), sigmoid($2))}"],
         {"y": (d(a) @ d(w) + d(e1)) * sigmoid(e2)}, params={"w": w}, tol=TRANS)

    name = "elementwise_sigmoid_tanh"
    rng = rng_for(name)
    x0, x1 = rn(rng, 3, 1, 5), rn(rng, 4, 1)
    emit(name, "fused", {"x0": x0, "x1": x1}, ["y = elementwise(x0, x1) {expr = mul(sigmoid($0), tanh($1))}"],
         {"y": sigmoid(x0) * np.tanh(d(x1))}, tol=TRANS)
    name = "elementwise_where_leaky"
    x0 = rn(rng_for(name), 5, 7)
    x0[0, :2] = [0.0, -0.0]
    emit(name, "fused", {"x0": x0}, [f"y = elementwise(x0) {{expr = where(greater($0, 0), $0, mul($0, {fl(0.1)}))}}"],
         {"y": np.where(d(x0) > 0, d(x0), d(x0) * float(F32(0.1)))})
    name = "elementwise_unary_params"
    rng = rng_for(name)
    x0, x1 = rn(rng, 3, 7, s=2.0), rn(rng, 7, s=2.0)
    emit(name, "fused", {"x0": x0, "x1": x1},
         [f"y = elementwise(x0, x1) {{expr = add(leaky_relu($0, {fl(0.25)}), clip($1, {fl(-0.5)}, {fl(0.5)}))}}"],
         {"y": np.where(d(x0) < 0, 0.25 * d(x0), d(x0)) + np.clip(d(x1), -0.5, 0.5)})
    name = "elementwise_three_inputs"
    rng = rng_for(name)
    x0, x1, x2 = rn(rng, 2, 3, 5), rn(rng, 3, 1), ru(rng, 0.5, 2.0, 5)
    emit(name, "fused", {"x0": x0, "x1": x1, "x2": x2},
         [f"y = elementwise(x0, x1, x2) {{expr = sub(mul($0, $1), div(exp($2), {fl(2.0)}))}}"],
         {"y": d(x0) * d(x1) - np.exp(d(x2)) / 2.0}, tol=TRANS)


# ----------------------------------------------------------------------------------
# end-to-end graphs


def cases_e2e():
    # MLP: matmul + add + relu + matmul + add + softmax
    name = "e2e_mlp"
    rng = rng_for(name)
    x = rn(rng, 5, 13)
    w1, b1, w2, b2 = rn(rng, 13, 17, s=0.3), rn(rng, 17, s=0.1), rn(rng, 17, 7, s=0.3), rn(rng, 7, s=0.1)
    h = np.maximum(d(x) @ d(w1) + d(b1), 0)
    logits = h @ d(w2) + d(b2)
    emit(name, "e2e", {"x": x},
         ["h0 = matmul(x, w1)", "h1 = add(h0, b1)", "h = relu(h1)", "l0 = matmul(h, w2)", "logits = add(l0, b2)",
          "probs = softmax(logits)"],
         {"logits": logits, "probs": softmax(logits, -1)},
         params={"w1": w1, "b1": b1, "w2": w2, "b2": b2}, tol=LONG)

    # conv + batch_norm + relu + max_pool + global pool + flatten + gemm
    name = "e2e_conv_block"
    rng = rng_for(name)
    x = rn(rng, 2, 3, 11, 9)
    w, b = rn(rng, 6, 3, 3, 3, s=0.4), rn(rng, 6, s=0.1)
    sc, bi, mu, var = ru(rng, 0.5, 1.5, 6), rn(rng, 6, s=0.1), rn(rng, 6, s=0.1), ru(rng, 0.5, 2.0, 6)
    fw, fb = rn(rng, 6, 5, s=0.5), rn(rng, 5, s=0.1)
    c = conv2d_ref(d(x), d(w), d(b), pad=(1, 1, 1, 1))
    r4 = lambda a: d(a).reshape(1, -1, 1, 1)
    bn = (c - r4(mu)) / np.sqrt(r4(var) + float(F32(1e-5))) * r4(sc) + r4(bi)
    r = np.maximum(bn, 0)
    p = pool2d_ref(r, "max", (2, 2))
    g = p.mean(axis=(2, 3), keepdims=True)
    f = g.reshape(2, 6)
    y = f @ d(fw) + d(fb)
    emit(name, "e2e", {"x": x},
         ["c = conv2d(x, w, b) {pad = [1, 1, 1, 1]}", "bn = batch_norm(c, sc, bi, mu, var)", "r = relu(bn)",
          "p = max_pool2d(r) {kernel = [2, 2]}", "g = global_avg_pool(p)", "f = reshape(g) {shape = [0, -1]}",
          "y = gemm(f, fw, fb)"],
         {"p": p, "y": y}, params={"w": w, "b": b, "sc": sc, "bi": bi, "mu": mu, "var": var, "fw": fw, "fb": fb}, tol=LONG)

    # transformer-ish block: pre-LN, 3-head causal attention, residual, pre-LN gelu MLP, residual
    name = "e2e_transformer"
    rng = rng_for(name)
    B, T, E, F = 2, 5, 6, 11
    x = rn(rng, B, T, E)
    g1, be1, g2, be2 = ru(rng, 0.5, 1.5, E), rn(rng, E, s=0.1), ru(rng, 0.5, 1.5, E), rn(rng, E, s=0.1)
    wq, wk, wv, wo = (rn(rng, E, E, s=0.4) for _ in range(4))
    w1, b1, w2, b2 = rn(rng, E, F, s=0.4), rn(rng, F, s=0.1), rn(rng, F, E, s=0.4), rn(rng, E, s=0.1)
    n1 = layer_norm_ref(x, g1, be1, -1, 1e-5)
    att = attention_ref(n1 @ d(wq), n1 @ d(wk), n1 @ d(wv), heads=3, causal=True)
    x1 = d(x) + att @ d(wo)
    n2 = layer_norm_ref(x1, g2, be2, -1, 1e-5)
    y = x1 + gelu(n2 @ d(w1) + d(b1)) @ d(w2) + d(b2)
    emit(name, "e2e", {"x": x},
         ["n1 = layer_norm(x, g1, be1)", "q = matmul(n1, wq)", "k = matmul(n1, wk)", "v = matmul(n1, wv)",
          "a = attention(q, k, v) {heads = 3, causal = true}", "o = matmul(a, wo)", "x1 = add(x, o)",
          "n2 = layer_norm(x1, g2, be2)", "f0 = matmul(n2, w1)", "f1 = add(f0, b1)", "f2 = gelu(f1)",
          "f3 = matmul(f2, w2)", "f4 = add(f3, b2)", "y = add(x1, f4)"],
         {"y": y},
         params={"g1": g1, "be1": be1, "wq": wq, "wk": wk, "wv": wv, "wo": wo, "g2": g2, "be2": be2,
                 "w1": w1, "b1": b1, "w2": w2, "b2": b2}, tol=LONG)

    # quantized linear: quantize -> qmatmul (requant i8, per-column weights) -> dequantize -> relu
    name = "e2e_quant_linear"
    sx, zx, so, zo = 0.03125, 5, 0.125, -7
    sw = [0.015625, 0.0078125, 0.03125, 0.015625, 0.0625]
    for attempt in range(100):
        rng = rng_for(name, attempt)
        x = rn(rng, 3, 13)
        wq_ = rng.integers(-128, 128, (13, 5)).astype(np.int8)
        bias = rng.integers(-500, 500, 5).astype(np.int32)
        qx = quantize_ref(x, sx, zx, "i8")
        acc = qmatmul_acc(qx, zx, wq_, np.zeros(5, np.int64)) + bias
        try:
            qy = requantize_ref(acc, sx, sw, so, zo, "i8")
            break
        except Ambiguous:
            continue
    y = np.maximum(dequantize_ref(qy, so, zo), 0).astype(F32)
    emit(name, "e2e", {"x": x},
         [f"qx = quantize(x) {{scale = {fl(sx)}, zero_point = {zx}}}",
          f"qy = qmatmul(qx, w, bias) {{dtype = i8, scale = {fl(so)}, zero_point = {zo}}}",
          "dy = dequantize(qy)", "y = relu(dy)"],
         {"qy": qy, "y": y}, params={"w": wq_, "bias": bias},
         param_types={"w": tstr("i8", wq_.shape, qtype(sw, [0] * 5, axis=1))}, tol=EXACT)

    # GRU encoder + last step + gemm head
    name = "e2e_gru_head"
    rng = rng_for(name)
    T, N, I, H = 5, 3, 7, 5
    x = rn(rng, T, N, I)
    w, r, b = rn(rng, 1, 3 * H, I, s=0.4), rn(rng, 1, 3 * H, H, s=0.4), rn(rng, 1, 6 * H, s=0.3)
    hw, hb = rn(rng, H, 3), rn(rng, 3)
    ys, hN = gru_ref(x, w, r, b, None, H, "forward", False)
    last = hN.reshape(N, H)
    out = last @ d(hw) + d(hb)
    emit(name, "e2e", {"x": x},
         [f"ys, h = gru(x, w, r, b) {{hidden = {H}}}", f"hl = reshape(h) {{shape = [{N}, {H}]}}", "y = gemm(hl, hw, hb)"],
         {"ys": ys, "y": out}, params={"w": w, "r": r, "b": b, "hw": hw, "hb": hb}, tol=LONG)

    # MoE block: layer_norm -> moe -> residual
    name = "e2e_moe_block"
    for attempt in range(100):
        rng = rng_for(name, attempt)
        x = rn(rng, 7, 6)
        g, be = ru(rng, 0.5, 1.5, 6), rn(rng, 6, s=0.1)
        gate, w1, w2 = rn(rng, 6, 4), rn(rng, 4, 6, 5, s=0.5), rn(rng, 4, 5, 6, s=0.5)
        n = layer_norm_ref(x, g, be, -1, 1e-5)
        try:
            m, _ = moe_ref(n.astype(F32), gate, w1, w2, 2, "gelu", 0)
            # routing decided on f32-rounded normalized values must not be fragile
            m2, _ = moe_ref(n, gate, w1, w2, 2, "gelu", 0)
            break
        except AssertionError:
            continue
    y = d(x) + m2
    emit(name, "e2e", {"x": x},
         ["n = layer_norm(x, g, be)", "logits = matmul(n, gate)", "m = moe(n, logits, w1, w2) {k = 2, activation = gelu}", "y = add(x, m)"],
         {"y": y}, params={"g": g, "be": be, "gate": gate, "w1": w1, "w2": w2}, tol=LONG)


# ----------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------
# NaN, infinities, signed zeros, huge and subnormal values: what numpy (IEEE
# arithmetic on the formulas of docs/ops.md) gives, for every elementwise,
# reduction, pooling, normalization and cast op. Inputs where a formula's own
# arithmetic makes a NaN that the function does not have (gelu(-inf) computes
# -inf·0; its limit is 0) are left out, as are huge finite arguments of sin/cos
# (outside the accuracy domain of any f32 polynomial range reduction).

NAN, INF = float("nan"), float("inf")
SPECIAL = [NAN, INF, -INF, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 88.0, -88.0, 100.0, -100.0,
           3e38, -3e38, 1e-38, -1e-38, 1e-45, 7.0, -0.75, 3.0, -3.0]


def special_x(name, drop=()):
    """The special values (a few left out), shuffled into a [4, k] tensor."""
    vals = [v for v in SPECIAL if not any((math.isnan(v) and math.isnan(x)) if isinstance(x, float) and math.isnan(x) else v == x and math.copysign(1, v) == math.copysign(1, x) for x in drop)]
    vals = [v for v in vals if not (("sin" in name or "cos" in name) and math.isfinite(v) and abs(v) > 1e4)]
    a = np.array(vals, F32)
    while a.size % 4:
        a = np.append(a, F32(0.25))
    rng_for(name).shuffle(a)
    return a.reshape(4, -1)


def cases_special():
    with np.errstate(all="ignore"):
        unary = [
            ("relu", lambda x: np.maximum(d(x), 0), (), EXACT),
            ("gelu", gelu, (-INF,), TRANS),
            ("gelu_tanh", gelu_tanh, (-INF,), TRANS),
            ("tanh", lambda x: np.tanh(d(x)), (), TRANS),
            ("sigmoid", sigmoid, (), TRANS),
            ("exp", lambda x: np.exp(d(x)), (), TRANS),
            ("log", lambda x: np.log(d(x)), (), TRANS),
            ("sqrt", lambda x: np.sqrt(d(x)), (), SIMPLE),
            ("rsqrt", lambda x: 1.0 / np.sqrt(d(x)), (), SIMPLE),
            ("neg", lambda x: -d(x), (), EXACT),
            ("abs", lambda x: np.abs(d(x)), (), EXACT),
            ("erf", erf, (), TRANS),
            ("sin", lambda x: np.sin(d(x)), (), TRANS),
            ("cos", lambda x: np.cos(d(x)), (), TRANS),
            ("reciprocal", lambda x: 1.0 / d(x), (), SIMPLE),
            ("floor", lambda x: np.floor(d(x)), (), EXACT),
            ("ceil", lambda x: np.ceil(d(x)), (), EXACT),
            ("round", lambda x: np.rint(d(x)), (), EXACT),
            ("sign", lambda x: np.sign(d(x)), (), EXACT),
            ("softplus", lambda x: np.logaddexp(0.0, d(x)), (), TRANS),
            ("silu", lambda x: d(x) * sigmoid(x), (-INF,), TRANS),
            ("identity", d, (), EXACT),
        ]
        for op, fn, drop, tol in unary:
            name = f"special_{op}"
            x = special_x(name, drop)
            emit(name, "special", {"x": x}, [f"y = {op}(x)"], {"y": fn(x)}, tol=tol, special=True)
        attr = [
            ("leaky_relu", f"leaky_relu(x) {{alpha = {fl(0.2)}}}", lambda x: np.where(d(x) < 0, float(F32(0.2)) * d(x), d(x)), SIMPLE),
            ("elu", "elu(x)", lambda x: np.where(d(x) < 0, np.exp(d(x)) - 1.0, d(x)), TRANS),
            ("hard_sigmoid", "hard_sigmoid(x)",
             lambda x: np.maximum(0.0, np.minimum(1.0, float(F32(0.2)) * d(x) + 0.5)), SIMPLE),
            ("clip", f"clip(x) {{min = {fl(-0.5)}, max = {fl(0.75)}}}",
             lambda x: np.minimum(np.maximum(d(x), float(F32(-0.5))), float(F32(0.75))), EXACT),
        ]
        for op, call, fn, tol in attr:
            name = f"special_{op}"
            x = special_x(name)
            emit(name, "special", {"x": x}, [f"y = {call}"], {"y": fn(x)}, tol=tol, special=True)

        # Binary ops on every pair of a smaller set (an outer product).
        pairs = [NAN, INF, -INF, 0.0, -0.0, 1.0, -2.0, 0.5, 3e38, 1e-38]
        a = np.array([p for p in pairs for _ in pairs], F32).reshape(len(pairs), len(pairs))
        b = np.array([q for _ in pairs for q in pairs], F32).reshape(len(pairs), len(pairs))
        binary = [
            ("add", lambda a, b: d(a) + d(b), SIMPLE),
            ("sub", lambda a, b: d(a) - d(b), SIMPLE),
            ("mul", lambda a, b: d(a) * d(b), SIMPLE),
            ("div", lambda a, b: d(a) / d(b), SIMPLE),
            ("max", lambda a, b: np.maximum(d(a), d(b)), EXACT),
            ("min", lambda a, b: np.minimum(d(a), d(b)), EXACT),
            ("pow", lambda a, b: np.power(d(a), d(b)), TRANS),
        ]
        for op, fn, tol in binary:
            name = f"special_{op}"
            emit(name, "special", {"a": a, "b": b}, [f"y = {op}(a, b)"], {"y": fn(a, b)}, tol=tol, special=True)
        for op, fn in [("equal", np.equal), ("less", np.less), ("less_equal", np.less_equal),
                       ("greater", np.greater), ("greater_equal", np.greater_equal)]:
            name = f"special_{op}"
            emit(name, "special", {"a": a, "b": b}, [f"y = {op}(a, b)"], {"y": fn(a, b)}, tol=EXACT, special=True)

        # Casts, as docs/ops.md defines them: float→int truncates toward zero and
        # saturates, NaN → 0; to bool is x != 0 (NaN is true); to f16 rounds to
        # nearest even and overflows to inf.
        x = special_x("special_cast")
        for to, lo, hi in [("i32", -(2**31), 2**31 - 1), ("i8", -128, 127), ("u8", 0, 255), ("i64", -(2**63), 2**63 - 1)]:
            name = f"special_cast_f32_{to}"
            t = np.trunc(d(x))
            y = np.where(np.isnan(t), 0, np.clip(t, lo, hi))
            # f64 cannot hold 2^63 - 1: saturate the ends exactly.
            ints = [lo if v <= lo else hi if v >= hi else int(v) for v in y.reshape(-1)]
            y = np.array(ints, dtype=NP_OF[to]).reshape(x.shape)
            emit(name, "special", {"x": x}, [f"y = cast(x) {{to = {to}}}"], {"y": y}, tol=EXACT, special=True)
        emit("special_cast_f32_bool", "special", {"x": x}, ["y = cast(x) {to = bool}"], {"y": x != 0}, tol=EXACT, special=True)
        emit("special_cast_f32_f16", "special", {"x": x}, ["y = cast(x) {to = f16}"], {"y": x.astype(np.float16)},
             tol=EXACT, special=True)

        # Reductions over rows that hold NaN, infinities of one or both signs,
        # huge values (squares overflow) and ordinary ones.
        rows = np.array([
            [1.0, NAN, 2.0, -3.0, 0.5, 4.0],
            [1.0, INF, 2.0, -3.0, 0.5, 4.0],
            [-INF, 1.0, INF, 2.0, 0.0, -1.0],
            [3e38, 3e38, -1.0, 2.0, 1.0, 0.5],
            [0.0, -0.0, 1e-38, -1e-38, 1e-45, 2.0],
            [-INF, -2.0, -1.0, -7.0, -0.5, -3.0],
            [NAN, INF, -INF, 0.0, 1.0, NAN],
        ], F32)
        reds = {
            "reduce_sum": lambda x: d(x).sum(axis=1, keepdims=True),
            "reduce_mean": lambda x: d(x).mean(axis=1, keepdims=True),
            "reduce_max": lambda x: d(x).max(axis=1, keepdims=True),
            "reduce_min": lambda x: d(x).min(axis=1, keepdims=True),
            "reduce_prod": lambda x: d(x).prod(axis=1, keepdims=True),
            "reduce_l2": lambda x: np.sqrt((d(x) ** 2).sum(axis=1, keepdims=True)),
        }
        for op, fn in reds.items():
            name = f"special_{op}"
            x = rows
            if op == "reduce_mean":
                # The compiled backends sum in f32: 3e38 + 3e38 overflows there
                # (the interpreter sums in f64); a mean of huge values of both
                # signs does not.
                x = rows.copy()
                x[3, 1] = -3e38
            tol = EXACT if op in ("reduce_max", "reduce_min") else SIMPLE
            # f32 sums overflow where f64 ones do not: compute as f32 would.
            y = fn(x)
            if op in ("reduce_sum", "reduce_mean", "reduce_l2"):
                y = np.where(np.isfinite(y) & (np.abs(y) > 3.4028234663852886e38), np.copysign(INF, y), y)
            emit(name, "special", {"x": x}, [f"y = {op}(x) {{axes = [1]}}"], {"y": y}, tol=tol, special=True)
        for op, fn in [("argmax", np.argmax), ("argmin", np.argmin)]:
            name = f"special_{op}"
            emit(name, "special", {"x": rows}, [f"y = {op}(x) {{axis = 1}}"],
                 {"y": fn(rows, axis=1, keepdims=True).astype(np.int64)}, tol=EXACT, special=True)

        # Pooling windows with NaN and infinities.
        img = rn(rng_for("special_pool"), 1, 2, 6, 7)
        img[0, 0, 1, 2] = NAN
        img[0, 0, 4, 5] = INF
        img[0, 1, 0, 0] = -INF
        img[0, 1, 3, 3] = INF
        img[0, 1, 3, 4] = -INF
        for op, kind in [("max_pool2d", "max"), ("avg_pool2d", "avg")]:
            name = f"special_{op}"
            y = pool2d_ref(img, kind, (3, 3), (2, 2), (1, 1, 1, 1))
            emit(name, "special", {"x": img}, [f"y = {op}(x) {{kernel = [3, 3], stride = [2, 2], pad = [1, 1, 1, 1]}}"],
                 {"y": y}, tol=EXACT if kind == "max" else SIMPLE, special=True)
        emit("special_global_max_pool", "special", {"x": img}, ["y = global_max_pool(x)"],
             {"y": d(img).max(axis=(2, 3), keepdims=True)}, tol=EXACT, special=True)
        emit("special_global_avg_pool", "special", {"x": img}, ["y = global_avg_pool(x)"],
             {"y": d(img).mean(axis=(2, 3), keepdims=True)}, tol=SIMPLE, special=True)

        # Softmax over rows masked with -inf (one wholly), and a row with a NaN.
        sm = rn(rng_for("special_softmax"), 4, 6, s=2.0)
        sm[0, [1, 4]] = -INF
        sm[1, :] = -INF
        sm[2, 3] = NAN
        for op, fn in [("softmax", softmax), ("log_softmax", log_softmax)]:
            emit(f"special_{op}", "special", {"x": sm}, [f"y = {op}(x)"], {"y": fn(sm, -1)}, tol=TRANS, special=True)
        # Layer norm with a NaN and an infinity in two of its rows.
        ln_x = rn(rng_for("special_layer_norm"), 3, 8)
        ln_x[0, 2] = NAN
        ln_x[1, 5] = INF
        scale, bias = rn(rng_for("special_layer_norm_p"), 8), rn(rng_for("special_layer_norm_q"), 8)
        emit("special_layer_norm", "special", {"x": ln_x}, ["y = layer_norm(x, scale, bias)"],
             {"y": layer_norm_ref(ln_x, scale, bias, -1, 1e-5)}, params={"scale": scale, "bias": bias}, tol=SIMPLE, special=True)
        # Batch norm passes NaN and infinities through its affine map.
        bx = special_x("special_batch_norm").reshape(2, 2, 3, -1)
        C = 2
        sc, bi, mu, var = np.array([1.5, -0.5], F32), np.array([0.25, 1.0], F32), np.array([0.1, -0.2], F32), np.array([0.5, 2.0], F32)
        r = lambda v: d(v).reshape(1, C, 1, 1)
        y = (d(bx) - r(mu)) / np.sqrt(r(var) + float(F32(1e-5))) * r(sc) + r(bi)
        emit("special_batch_norm", "special", {"x": bx}, ["y = batch_norm(x, scale, bias, mean, var)"], {"y": y},
             params={"scale": sc, "bias": bi, "mean": mu, "var": var}, tol=SIMPLE, special=True)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.iterdir():
        if p.suffix in (".smelt", ".safetensors") or p.name == "MANIFEST.txt":
            p.unlink()
    for fn in [cases_unary, cases_cast, cases_binary, cases_linalg, cases_conv, cases_pool, cases_norm,
               cases_reduce, cases_shape, cases_resize, cases_recurrent, cases_attention, cases_quant, cases_sparse,
               cases_routing, cases_fused, cases_e2e, cases_special]:
        fn()
    (OUT / "MANIFEST.txt").write_text("\n".join(MANIFEST) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(MANIFEST)} cases, {total / 1024:.0f} KiB in {OUT.relative_to(ROOT)}")
    for fam, n in STATS.items():
        print(f"  {fam:14s} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
