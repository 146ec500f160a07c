"""Native op names → the normalised ``kind`` vocabulary (see inventory.py)."""

from __future__ import annotations

KINDS: dict[str, str] = {
    # ML program (MIL) op types
    "conv": "conv", "conv_transpose": "conv_transpose",
    "max_pool": "pool", "avg_pool": "pool", "l2_pool": "pool",
    "relu": "activation", "relu6": "activation", "sigmoid": "activation", "tanh": "activation",
    "gelu": "activation", "silu": "activation", "leaky_relu": "activation", "clip": "activation",
    "batch_norm": "batchnorm", "layer_norm": "normalization", "instance_norm": "normalization",
    "l2_norm": "normalization", "local_response_norm": "normalization",
    "linear": "linear", "matmul": "matmul", "einsum": "matmul",
    "add": "elementwise", "mul": "elementwise", "sub": "elementwise", "real_div": "elementwise",
    "maximum": "elementwise", "minimum": "elementwise", "pow": "elementwise", "sqrt": "elementwise",
    "rsqrt": "elementwise", "exp": "elementwise",
    "concat": "concat", "reshape": "reshape", "expand_dims": "reshape", "squeeze": "reshape",
    "flatten2d": "reshape", "transpose": "transpose", "softmax": "softmax",
    "upsample_nearest_neighbor": "upsample", "upsample_bilinear": "upsample", "resize_bilinear": "upsample",
    "lstm": "rnn", "gru": "rnn", "rnn": "rnn",
    "gather": "gather", "gather_nd": "gather", "gather_along_axis": "gather",
    "reduce_mean": "reduce", "reduce_sum": "reduce", "reduce_max": "reduce",
    "slice_by_index": "slice", "slice_by_size": "slice", "split": "slice",
    "pad": "pad", "cast": "cast",
    # Neural network layer kinds
    "convolution": "conv", "pooling": "pool", "activation": "activation",
    "batchnorm": "batchnorm", "innerProduct": "linear", "batchedMatmul": "matmul",
    "multiply": "elementwise", "unary": "elementwise",
    "addBroadcastable": "elementwise", "multiplyBroadcastable": "elementwise",
    "flatten": "reshape", "reshapeStatic": "reshape",
    "permute": "transpose", "softmaxND": "softmax",
    "upsample": "upsample", "uniDirectionalLSTM": "rnn", "biDirectionalLSTM": "rnn",
    "simpleRecurrent": "rnn", "embedding": "embedding",
    "embeddingND": "embedding", "reduce": "reduce", "padding": "pad", "slice": "slice",
    "custom": "custom", "mvn": "normalization", "l2normalize": "normalization",
}  # fmt: skip


def kind_of(native: str) -> str:
    return KINDS.get(native, "other")
