"""Translation of NNHandler's configuration to PyTorch Lightning.

Installed as ``nn_handler.adapters``; everything that touches Lightning lives here.
"""
