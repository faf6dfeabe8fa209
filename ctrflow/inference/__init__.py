"""Inference: trained models rebuilt from HugeCTR's graph JSON and model files, predicting over datasets."""

from ctrflow.inference.model import InferenceConfig, InferenceModel

__all__ = ["InferenceConfig", "InferenceModel"]
