"""Baseline EEG models on raw signals (EEGNet, ShallowConvNet, DeepConvNet); the registry that builds them comes with the model-registry work."""
