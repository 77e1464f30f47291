"""Measuring a model: scoring labelled photos, the metrics, the report, the ONNX reference."""
