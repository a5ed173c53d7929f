"""Built-in generative backends: flow-matching (PyTorch), diffusion (TensorFlow/Keras), smearing (numpy)."""
