"""The classifier: backbone, preprocessing, training, evaluation and the model file."""

import logging

# On every machine without a TPU, JAX logs "Unable to initialize backend 'tpu'" at INFO, which
# reads like an error in our INFO-level logs. Only that line goes: a GPU that fails to start
# must still say why.
logging.getLogger("jax._src.xla_bridge").addFilter(
    lambda record: "backend 'tpu'" not in record.getMessage())
