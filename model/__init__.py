"""The classifier: backbone, preprocessing, training, evaluation and the model file."""

import logging

# On every machine without a TPU, JAX logs "Unable to initialize backend 'tpu'" at INFO, which
# reads like an error in our INFO-level logs; its warnings still come through.
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
