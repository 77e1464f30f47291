"""The classifier: backbone, preprocessing, training, evaluation and the model file."""

import logging

# Backbone variants, each also a zero-training model. Lite2 is the most accurate, at twice
# Lite0's time and the same ratio to ONNX Runtime (README: "Accuracy and latency ...").
MODELS = ("lite0", "lite1", "lite2")
DEFAULT_VARIANT = "lite2"
# How each backbone's last feature map becomes the features its heads read: the plain mean of
# its cells ("mean", what ImageNet's classifier was fitted on), or the cells weighted by their
# dog probability ("dog", ``model.localize.dog_pooled``). Lite2 gained 6 of 182 wiki-dogs-dev
# and 4 of 170 imagewoof-val-dev photos from it (lost 0 and 1); Lite0 and Lite1 gained none
# (README, "Looking closer"). Model files from before it was chosen read "mean".
POOLINGS = ("mean", "dog")
POOLING = {"lite0": "mean", "lite1": "mean", "lite2": "dog"}
# The backbone's 1×1 convolutions' products: exact, or rounded to bfloat16 and summed in
# float32, which a CPU with bfloat16 dot products runs in 0.6-0.7 of the time (README, Speed).
MATMULS = ("float32", "bfloat16")
MATMUL_SETTINGS = ("auto", *MATMULS)  # "auto": Predictor's choice (README, WHATBREED_MATMUL)

# On every machine without a TPU, JAX logs "Unable to initialize backend 'tpu'" at INFO, which
# reads like an error in our INFO-level logs. Only that line goes: a GPU that fails to start
# must still say why.
logging.getLogger("jax._src.xla_bridge").addFilter(
    lambda record: "backend 'tpu'" not in record.getMessage())
