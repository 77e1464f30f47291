"""An ONNX graph of EfficientNet-Lite built straight from the torch state_dict.

Benchmark and test use only (needs the ``bench`` extra): ONNX Runtime is the speed anchor
users would otherwise pick, and an independent numerical reference, since this graph keeps
BatchNorm as its own op and uses ONNX's own convolutions and padding.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from model.efficientnet import BN_EPSILON, EfficientNetLite


class _GraphBuilder:
    def __init__(self, state_dict: dict[str, np.ndarray]):
        self.state = state_dict
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def _weight(self, name: str) -> str:
        self.initializers.append(numpy_helper.from_array(self.state[name].astype(np.float32), name))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, stride: int = 1, relu6: bool = True) -> str:
        weight = self.state[f"{conv}.weight"]  # (O, I/groups, k, k)
        groups = weight.shape[0] if weight.shape[1] == 1 and weight.shape[2] > 1 else 1
        self.nodes.append(helper.make_node(
            "Conv", [x, self._weight(f"{conv}.weight")], [conv], strides=[stride, stride],
            group=groups, auto_pad="SAME_UPPER", kernel_shape=list(weight.shape[2:])))
        bn_inputs = [conv] + [self._weight(f"{bn}.{n}")
                              for n in ("weight", "bias", "running_mean", "running_var")]
        self.nodes.append(helper.make_node("BatchNormalization", bn_inputs, [bn],
                                           epsilon=BN_EPSILON))
        if not relu6:
            return bn
        self.nodes.append(helper.make_node("Clip", [bn, "zero", "six"], [f"{bn}.relu6"]))
        return f"{bn}.relu6"

    def add(self, a: str, b: str, out: str) -> str:
        self.nodes.append(helper.make_node("Add", [a, b], [out]))
        return out


def build_onnx(state_dict: dict[str, np.ndarray], model: EfficientNetLite) -> onnx.ModelProto:
    """Graph: input "pixels" (B, 3, S, S) already normalised -> "features" (B, 1280), "logits"."""
    g = _GraphBuilder(state_dict)
    g.initializers += [numpy_helper.from_array(np.float32(value), name)
                       for name, value in (("zero", 0), ("six", 6))]
    x = g.conv_bn("pixels", "_conv_stem", "_bn0", stride=2)
    for index, spec in enumerate(model.blocks):
        p, inputs = f"_blocks.{index}", x
        if spec.expand_ratio != 1:
            x = g.conv_bn(x, f"{p}._expand_conv", f"{p}._bn0")
        x = g.conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", stride=spec.stride)
        x = g.conv_bn(x, f"{p}._project_conv", f"{p}._bn2", relu6=False)
        if spec.stride == 1 and spec.in_features == spec.out_features:
            x = g.add(x, inputs, f"{p}.out")
    x = g.conv_bn(x, "_conv_head", "_bn1")
    g.nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["features"]),
        helper.make_node("Gemm", ["features", g._weight("_fc.weight"), g._weight("_fc.bias")],
                         ["logits"], transB=1),
    ]
    size = model.resolution
    graph = helper.make_graph(
        g.nodes, "efficientnet_lite",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 1280]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])],
        g.initializers)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model)
    return onnx_model


def ort_session(state_dict: dict[str, np.ndarray], model: EfficientNetLite, threads: int = 0,
                options=None):
    """An ONNX Runtime session over the graph (0 threads: ORT's default), with ``options``
    (an ``onnxruntime.SessionOptions``) where given."""
    import onnxruntime as ort

    options = options or ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(build_onnx(state_dict, model).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
