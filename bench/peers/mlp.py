"""Shared MLP for the Python benchmark peers (Celery, ONNX Runtime).

Not part of aas: comparison only.  API:

    sizes = parse_mlp("784-512-512-10")        # [784, 512, 512, 10]
    layers = init_weights(sizes, seed=1)        # [(W (in, out) f32, b (out,) f32), ...]
    probs = forward(layers, x)                  # x (rows, in) f32 -> (rows, out) f32
    model = build_onnx(layers, op="gemm")       # onnx.ModelProto, input "x" [batch, in]
    flops_per_row(sizes)                        # 2 * sum(in * out)

Dense layers, relu after each hidden layer, softmax on the output, float32.
Weights are He normal (N(0, 2 / fan_in)) from numpy default_rng(seed),
biases zero; the figures do not depend on the values, only the shapes, but
every peer runs the real computation on them.
"""
import numpy as np

DEFAULT_SEED = 1


def parse_mlp(spec):
    """'784-512-512-10' -> [784, 512, 512, 10] (at least input and output)."""
    sizes = [int(s) for s in str(spec).split("-")]
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"bad MLP spec {spec!r}: want sizes like 784-512-512-10")
    return sizes


def mlp_name(sizes):
    return "-".join(str(s) for s in sizes)


def flops_per_row(sizes):
    """Multiply-adds of the dense layers, 2 flops each (activations not counted)."""
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def init_weights(sizes, seed=DEFAULT_SEED):
    """He-normal weights (in, out) and zero biases, float32, deterministic in seed."""
    rng = np.random.default_rng(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = rng.standard_normal((fan_in, fan_out), dtype=np.float32)
        w *= np.float32(np.sqrt(2.0 / fan_in))
        layers.append((w, np.zeros(fan_out, dtype=np.float32)))
    return layers


def forward(layers, x):
    """Softmax probabilities for the rows of x (rows, in) -> (rows, out), float32."""
    h = np.asarray(x, dtype=np.float32)
    if h.ndim == 1:
        h = h[None, :]
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        h = h @ w
        h += b
        if i < last:
            np.maximum(h, 0.0, out=h)
    h -= h.max(axis=1, keepdims=True)  # stable softmax
    np.exp(h, out=h)
    h /= h.sum(axis=1, keepdims=True)
    return h


def build_onnx(layers, op="gemm", opset=17, ir_version=8):
    """ONNX graph of the same MLP: Gemm (or MatMul + Add), Relu, Softmax(axis=-1).

    Input "x" float32 [batch, in] with a symbolic batch, output "probs"
    [batch, out].  The weights are initializers.  IR version 8 / opset 17
    so that any recent onnxruntime loads it.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if op not in ("gemm", "matmul"):
        raise ValueError("op must be 'gemm' or 'matmul'")
    nodes, inits = [], []
    cur = "x"
    last = len(layers) - 1
    for i, (w, b) in enumerate(layers):
        wn, bn = f"w{i}", f"b{i}"
        inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
        dense = f"dense{i}"
        if op == "gemm":
            nodes.append(helper.make_node("Gemm", [cur, wn, bn], [dense], name=f"gemm{i}"))
        else:
            nodes.append(helper.make_node("MatMul", [cur, wn], [f"mm{i}"], name=f"matmul{i}"))
            nodes.append(helper.make_node("Add", [f"mm{i}", bn], [dense], name=f"add{i}"))
        if i < last:
            cur = f"relu{i}"
            nodes.append(helper.make_node("Relu", [dense], [cur], name=cur))
        else:
            nodes.append(helper.make_node("Softmax", [dense], ["probs"], axis=-1, name="softmax"))
    n_in, n_out = layers[0][0].shape[0], layers[-1][0].shape[1]
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_in])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", n_out])],
        initializer=inits)
    model = helper.make_model(graph, producer_name="aas-bench-peers",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    return model
