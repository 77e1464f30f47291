"""Measuring a model: accuracy on labelled photos, the evaluation report, the ONNX reference."""
