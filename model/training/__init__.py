"""Training a breed head on cached backbone features, and its calibration."""
