"""Framework-free core of parnassus: event model, I/O, detector cards, backend
contract, probability paths, ODE solvers and plugin discovery.

Nothing in this package imports PyTorch or TensorFlow.
"""
