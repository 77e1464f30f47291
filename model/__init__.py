"""The classifier: backbone, preprocessing, training, evaluation and the model file."""

import logging

# Backbone variants, each also a zero-training model. Lite2 is the most accurate, at twice
# Lite0's time and the same ratio to ONNX Runtime (README: "Accuracy and latency ...").
MODELS = ("lite0", "lite1", "lite2")
DEFAULT_VARIANT = "lite2"

# On every machine without a TPU, JAX logs "Unable to initialize backend 'tpu'" at INFO, which
# reads like an error in our INFO-level logs. Only that line goes: a GPU that fails to start
# must still say why.
logging.getLogger("jax._src.xla_bridge").addFilter(
    lambda record: "backend 'tpu'" not in record.getMessage())
