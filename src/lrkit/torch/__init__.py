"""The PyTorch binding (needs ``pip install lrkit[torch]``)."""
